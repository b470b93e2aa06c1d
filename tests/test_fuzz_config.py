"""Bad input is one CvgenError line at config time, whatever the input: property-based tests.

Configs are generated from the schema itself (hypothesis-jsonschema) and by mutating a small
valid config (wrong types, out-of-range and whole-number numbers, NaN, unknown keys, odd
strings); Blackbird scripts from SF's op names and made-up ones, on random wires with random
arguments. Every one either builds a plan or raises CvgenError with a one-line message, never
another exception; a plan that is built holds only values every later stage can use, and a
script that is accepted is one Strawberry Fields builds (and the compiled engine compiles).
"""

from __future__ import annotations

import copy
import inspect
import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from conftest import ROOT
from cvgen.config import config_hash
from cvgen.errors import CvgenError
from cvgen.plan import MAX_SHARDS, DatasetPlan, build_plan, plan_from_json
from cvgen.program import (
    CHANNEL_SIGNATURES,
    GATE_SIGNATURES,
    PREPARATION_SIGNATURES,
    REFUSED_OPS,
    SF_OP_NAMES,
)

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
BASE = {
    "dataset": "fuzz",
    "seed": 3,
    "circuit": {"modes": 2, "layers": 1, "cutoff": 5},
    "parameters": [
        {"match": "input_*", "distribution": "normal", "std": 0.3, "vary": "per_sample"},
        {"match": "*", "distribution": "uniform", "low": -0.1, "high": 0.1},
    ],
    "samples_per_circuit": 40,
    "shard_size": 16,
    "batch_size": 8,
    "outputs": ["quad_x", "homodyne"],
    "sampling": {"shots": 2, "homodyne": {"quadratures": ["x"], "grid_points": 65}},
}


def plan_or_error(config) -> DatasetPlan | None:
    """The plan of `config`, or None after checking its CvgenError is one readable line."""
    try:
        plan = build_plan(config)
    except CvgenError as err:
        message = str(err)
        assert message and "\n" not in message and len(message) < 600, repr(message)
        event("refused")
        return None
    check_plan(plan)
    event("built")
    return plan


def check_plan(plan: DatasetPlan) -> None:
    """What every stage relies on: integers where counts are, finite numbers, int64 seeds."""
    json.dumps(plan.config, allow_nan=False)  # stored with every file; no NaN, no infinity
    assert plan_from_json(plan.to_json()) == plan
    assert len(config_hash(plan.config)) == 64
    circuit = plan.config["circuit"]
    counts = [plan.seed, plan.n_circuits, plan.samples_per_circuit, plan.batch_size]
    counts += [circuit["cutoff"], circuit["modes"], circuit["layers"]]
    assert all(type(value) is int for value in counts), counts
    assert 0 <= plan.seed < 2**63 and 1 <= len(plan.shards) <= MAX_SHARDS
    assert plan.dataset.isascii() and "\n" not in plan.dataset and len(plan.dataset) <= 100
    for rule in plan.config["parameters"]:
        numbers = [v for k, v in rule.items() if k not in ("match", "distribution", "vary")]
        assert all(type(v) is float for v in numbers), rule


def tightened(schema: dict) -> dict:
    """The schema with the circuit kept small, so a valid config builds its plan in
    milliseconds (the mutation tests below reach the extremes one key at a time)."""
    schema = copy.deepcopy(schema)
    circuit = schema["properties"]["circuit"]["properties"]
    circuit["modes"]["maximum"] = 3
    circuit["layers"]["maximum"] = 2
    circuit["cutoff"]["maximum"] = 12
    schema["properties"]["convergence"]["properties"]["extra_cutoff"]["maximum"] = 6
    return schema


@FAST
@given(from_schema(tightened(SCHEMA)))
def test_configs_from_the_schema_build_or_fail_with_one_line(config):
    plan_or_error(config)


def test_whole_number_floats_are_the_integers_they_stand_for():
    floats = {
        **BASE,
        "seed": 3.0,
        "circuit": {"modes": 2.0, "layers": 1.0, "cutoff": 5.0},
        "samples_per_circuit": 40.0,
        "shard_size": 16.0,
        "batch_size": 8.0,
    }
    plan, again = build_plan(BASE), build_plan(floats)
    assert again.config == plan.config and again.config_hash == plan.config_hash
    check_plan(again)


# Values that are wrong somewhere: wrong types, edges and beyond of every range, NaN, odd text.
ODD_NUMBERS = [0, -1, 1, 2, 6.0, 0.5, -0.0, 1e-300, 1e300, 2**31, 2**53 + 1, 2**63, 2**64, 10**400]
ODD_NUMBERS += [float("nan"), float("inf"), -float("inf"), True, False]
ODD_STRINGS = ["", " ", "abc\n", "a/b", "..", ".", "x" * 300, "ünï", "\x00", "*", "-1", "1e3"]
odd_values = st.one_of(
    st.sampled_from(ODD_NUMBERS + ODD_STRINGS + [None, [], {}, [None], {"a": 1}, ["x", "p"]]),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3)), max_size=3),
)


def schema_paths(schema: dict, path: tuple = ()) -> list[tuple]:
    """Every key path the schema describes (a list's items as its element 0)."""
    paths = []
    for key, sub in schema.get("properties", {}).items():
        paths.append((*path, key))
        paths += schema_paths(sub, (*path, key))
        if "items" in sub:
            paths += schema_paths(sub["items"], (*path, key, 0))
    return paths


PATHS = schema_paths(SCHEMA) + [("typo",), ("circuit", "typo"), ("parameters", 0, "typo")]


def set_path(config: dict, path: tuple, value) -> None:
    """Set `value` at `path`, creating mappings on the way; where the path meets a list (or a
    mutation put one there), only an existing element is followed or set."""
    node = config
    for key in path[:-1]:
        if isinstance(node, list) and not (isinstance(key, int) and key < len(node)):
            return
        if not isinstance(node[key] if isinstance(node, list) else node.get(key), (dict, list)):
            node[key] = {}
        node = node[key]
    if isinstance(node, dict) or (isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = value


@FAST
@given(st.lists(st.tuples(st.sampled_from(PATHS), odd_values), min_size=1, max_size=3))
def test_mutated_configs_build_or_fail_with_one_line(mutations):
    config = copy.deepcopy(BASE)
    for path, value in mutations:
        set_path(config, path, value)
    circuit = config.get("circuit")
    if isinstance(circuit, dict) and circuit.get("truncation") == "total":
        # A total-truncation basis is enumerated to estimate memory (cvgen.memory): seconds
        # at cutoff 300, so keep it small here.
        assume(not isinstance(circuit.get("cutoff"), (int, float)) or circuit["cutoff"] < 40)
    plan_or_error(config)


@pytest.mark.parametrize("document", ["", "# nothing\n", "{}\n", "null\n"])
def test_an_empty_config_builds_the_default_dataset(tmp_path, document):
    from cvgen.config import read_config

    (tmp_path / "empty.yaml").write_text(document)
    assert build_plan(read_config(tmp_path / "empty.yaml")).config == build_plan({}).config
    assert build_plan(None).config == build_plan({}).config


# Blackbird scripts: SF's op names and made-up ones, random wires and arguments.
MADE_UP = ["Foo", "dgate", "DGate", "Measure", "Sgate2", "Interferometer_", "Vacuum2"]
number = st.one_of(
    st.integers(-3, 12),
    st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 3)),
    st.sampled_from(["1e999", "-0.0", "2**64", "pi", "1j", "1+2j", "1e-9"]),
)
free = st.sampled_from(["{a}", "{b}", "{a}*2", "{a}+{b}", "sin({a})", "-{b}", "{a}**2", "q0"])
argument = st.one_of(number.map(str), free, st.sampled_from(["U", "S", "psi", "True", '"x"']))


@st.composite
def statement(draw) -> str:
    name = draw(st.sampled_from(sorted(SF_OP_NAMES) + MADE_UP))
    args = draw(st.lists(argument, max_size=4))
    if draw(st.booleans()) and args:
        key = draw(st.sampled_from(["phi", "r", "theta", "q", "n", "mesh", "tol"]))
        args[-1] = f"{key}={args[-1]}"
    call = name if draw(st.integers(0, 5)) == 0 else f"{name}({', '.join(args)})"
    wire = st.one_of(st.integers(0, 3), st.sampled_from([-1, -2, 64, 1000, 10**6]))
    wires = draw(st.lists(wire, min_size=1, max_size=3))
    target = str(wires[0]) if len(wires) == 1 and draw(st.booleans()) else str(wires)
    return f"{call} | {target}"


ARRAYS = """complex array U[2, 2] =
    0.6, 0.8
    -0.8, 0.6

float array S[2, 2] =
    1.0, 0.5
    0.0, 1.0

float array A[2, 2] =
    0.0, 0.2
    0.2, 0.0

complex array psi[1, 4] =
    0, 1, 0, 0

"""
MATRICES = {"Interferometer": "U", "GaussianTransform": "S", "GraphEmbed": "A"}
MATRICES["BipartiteGraphEmbed"] = "A"


@st.composite
def plausible_statement(draw) -> str:
    """A statement cvgen accepts more often than not: a known op with its number of arguments,
    on as many distinct small wires as it acts on."""
    signatures = {**GATE_SIGNATURES, **PREPARATION_SIGNATURES}
    name = draw(st.sampled_from(sorted(signatures)))
    signature = signatures[name]
    count = draw(st.integers(signature.required, len(signature.params)))
    if signature.values == "matrix":
        args = [MATRICES[name]]
    elif signature.values == "count":
        args = [str(draw(st.integers(0, 3)))] * count
    else:
        args = draw(st.lists(st.one_of(number.map(str), free), min_size=count, max_size=count))
    call = name if signature.instance else f"{name}({', '.join(args)})"
    wires = draw(st.permutations(range(3)))[: signature.wires or 2]
    return f"{call} | {wires[0] if len(wires) == 1 else list(wires)}"


@st.composite
def script(draw) -> str:
    header = "name fuzz\nversion 1.0\n"
    header += draw(st.sampled_from(["", "target tf\n", "target tf (cutoff_dim=4)\n"]))
    arrays = ARRAYS if draw(st.booleans()) else ""
    line = st.integers(0, 9).flatmap(lambda i: plausible_statement() if i < 8 else statement())
    body = draw(st.lists(line, min_size=0, max_size=5))
    return header + "\n" + arrays + "\n".join(body) + "\n"


@pytest.fixture(scope="module")
def script_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "c.xbb"


@pytest.fixture(scope="module")
def sf():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import strawberryfields

    return strawberryfields


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=script(), engine=st.sampled_from(["compiled", "sf"]))
def test_generated_blackbird_scripts_are_refused_at_config_time_or_run(
    sf, script_path, text, engine
):
    script_path.write_text(text)
    config = {**BASE, "engine": engine, "circuit": {"blackbird": str(script_path), "cutoff": 3}}
    del config["parameters"]  # the default rules: `*` matches whatever the script declares
    plan = plan_or_error(config)
    if plan is None:
        return
    # Accepted: the job's engine runs it (the compiled one after SF compiled its op list).
    import numpy as np

    from cvgen.engines import make_engine

    args = {name: np.full(2, 0.1) for name in plan.circuit.parameter_names}
    make_engine(engine, plan.circuit, 2, outputs=("norm", "quad_x")).observables(args, 2)


def test_op_tables_match_strawberry_fields(sf):
    """cvgen knows SF's ops without importing it (seconds of TensorFlow start-up): the tables
    must say what SF 0.23 says."""
    from strawberryfields import ops

    assert set(ops.__all__) == SF_OP_NAMES
    tables = {**GATE_SIGNATURES, **PREPARATION_SIGNATURES, **CHANNEL_SIGNATURES}
    assert set(tables) | set(REFUSED_OPS) == SF_OP_NAMES
    for name, signature in tables.items():
        op = getattr(ops, name)
        assert signature.instance == (not inspect.isclass(op)), name
        cls = type(op) if signature.instance else op
        if signature.wires is not None:
            assert signature.wires == cls.ns, name
        if signature.instance:
            continue
        params = [p for p in inspect.signature(cls.__init__).parameters.values()][1:]
        assert [p.name for p in params[: len(signature.params)]] == list(signature.params), name
        required = sum(p.default is inspect.Parameter.empty for p in params)
        assert signature.required == required, name


@pytest.mark.parametrize(
    ("body", "engine", "fragment"),
    [
        ("BSgate(0.1) | [0, 0]\nDgate({a}) | 0\n", "sf", "line 4 'BSgate(0.1) | [0, 0]'"),
        ("Dgate({a}) | 0\nFoo(0.1) | 1\n", "compiled", "line 5 'Foo(0.1) | 1': Foo is not a"),
        ("Dgate({a}) | 0\nFoo(0.1) | 1\n", "sf", "Foo is not a Strawberry Fields op"),
        ("Dgate({a}) | 0\nSgate(0.1) | -1\n", "sf", "mode -1 does not exist"),
        ("Fock(1) | 0\nDgate({a}) | 1\n", "sf", "line 4 'Fock(1) | 0': Fock prepares one mode"),
        ("Dgate({a}) | 0\nDgate(0.1) | [0, 1]\n", "sf", "Dgate acts on 1 mode, not 2"),
        ("Dgate({a}) | 0\nDgate() | 0\n", "sf", "Dgate needs its argument r"),
        ("Dgate({a}, q=1) | 0\n", "sf", "arguments Dgate(r, phi) only"),
        ("Fock(7) | 0\nDgate({a}) | 0\n", "sf", "0 <= n < cutoff 4, not 7"),
        ("Dgate({a}) | 0\nVac | 0\n", "sf", "Vac resets mode 0 after other ops"),
        ("Dgate({a}) | 0\nGKP() | 0\n", "sf", "TF backend cannot prepare it"),
        ("Dgate({a}) | 0\nThermal(0.1) | 0\n", "sf", "Thermal makes the output state mixed"),
        ("Dgate({a}) | 0\nMeasureX | 0\n", "sf", "MeasureX is not supported"),
    ],
)
def test_bad_blackbird_line_is_named(tmp_path, body, engine, fragment):
    (tmp_path / "c.xbb").write_text("name c\nversion 1.0\n\n" + body)
    config = {**BASE, "engine": engine, "circuit": {"blackbird": str(tmp_path / "c.xbb")}}
    config["circuit"]["cutoff"] = 4
    config["parameters"] = [{"match": "a", "distribution": "normal", "std": 0.1}]
    with pytest.raises(CvgenError, match=None) as caught:
        build_plan(config)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_one_mode_preparations_run_on_engine_sf(sf, tmp_path):
    """Fock, Coherent, ... on a one-mode circuit leave a pure ket: SF's TF backend runs them
    (Coherent(0) too: its whole-number literal reaches SF as a float)."""
    import numpy as np

    from cvgen.engines import make_engine

    script = "Fock(1) | 0\nCoherent(0) | 0\nDgate({a}) | 0\n"
    (tmp_path / "c.xbb").write_text("name c\nversion 1.0\n\n" + script)
    config = {**BASE, "engine": "sf", "circuit": {"blackbird": str(tmp_path / "c.xbb")}}
    config["parameters"] = [{"match": "a", "distribution": "normal", "std": 0.1}]
    plan = build_plan(config)
    assert plan.circuit.modes == 1
    norm = make_engine("sf", plan.circuit, 2, outputs=("norm",)).observables({"a": np.zeros(2)}, 2)
    assert np.allclose(norm["norm"], 1, atol=1e-5)  # the vacuum (Coherent(0) replaced |1>)
    with pytest.raises(CvgenError, match="op Fock is not supported by engine 'compiled'"):
        build_plan({**config, "engine": "compiled"})


def test_a_circuit_without_free_parameters_needs_no_rules(tmp_path):
    (tmp_path / "c.xbb").write_text("name c\nversion 1.0\n\nDgate(0.1) | 0\n")
    config = {**BASE, "circuit": {"blackbird": str(tmp_path / "c.xbb")}}
    del config["parameters"]
    assert build_plan(config).circuit.parameter_names == ()
    rules = [{"match": "a", "distribution": "normal", "std": 0.1}]
    with pytest.raises(CvgenError, match="the circuit has no free parameters, so it needs no"):
        build_plan({**config, "parameters": rules})


def test_size_limits_are_checked_before_any_size_is_computed():
    for circuit in ({"modes": 64, "cutoff": 4096}, {"modes": 64, "truncation": "total"}):
        with pytest.raises(CvgenError, match="basis states per sample"):
            build_plan({**BASE, "circuit": {**BASE["circuit"], **circuit}})
    with pytest.raises(CvgenError, match="convergence.extra_cutoff"):
        build_plan({**BASE, "convergence": {"extra_cutoff": 10**30}})
    assert math.isfinite(build_plan({**BASE, "circuit": {"modes": 1, "cutoff": 4096}}).memory_mb)

"""Bad input through the real workflow: exit status != 0, one error naming the key, no results."""

import pytest

from conftest import run_workflow

BB_HEADER = "name c\nversion 1.0\n\n"
SMALL = {"samples_per_circuit": 8, "shard_size": 8, "batch_size": 4}
A_ONLY = [{"match": "a", "distribution": "normal", "std": 0.1}]


def rules(*specs):
    return [{"match": m, "distribution": "normal", "std": 0.1} for m in specs]


# (case, config, files written next to it, fragment the error must contain)
CASES = [
    ("modes zero", {"circuit": {"modes": 0}}, {}, "circuit.modes"),
    ("modes negative", {"circuit": {"modes": -2}}, {}, "circuit.modes"),
    ("layers zero", {"circuit": {"layers": 0}}, {}, "circuit.layers"),
    ("cutoff below 2", {"circuit": {"cutoff": 1}}, {}, "circuit.cutoff"),
    ("state beyond budget", {"circuit": {"modes": 8, "cutoff": 12}}, {}, "memory_budget_mb"),
    ("unknown template", {"circuit": {"template": "gan"}}, {}, "circuit.template"),
    ("unknown engine", {"engine": "fast"}, {}, "engine"),
    ("unknown output", {"outputs": ["quad_y"]}, {}, "outputs"),
    (
        "unknown distribution",
        {"parameters": [{"match": "*", "distribution": "gauss", "std": 1}]},
        {},
        "parameters.0.distribution",
    ),
    (
        "distribution missing a field",
        {"parameters": [{"match": "*", "distribution": "uniform", "low": 0}]},
        {},
        "'high' is a required property",
    ),
    (
        "wrong-typed field",
        {"parameters": [{"match": "*", "distribution": "normal", "std": "wide"}]},
        {},
        "parameters.0.std",
    ),
    (
        "negative std",
        {"parameters": [{"match": "*", "distribution": "normal", "std": -0.1}]},
        {},
        "parameters.0.std",
    ),
    (
        "low above high",
        {"parameters": [{"match": "*", "distribution": "uniform", "low": 1, "high": 0}]},
        {},
        "low > high",
    ),
    (
        "NaN value",
        {"parameters": [{"match": "*", "distribution": "constant", "value": float("nan")}]},
        {},
        "value is nan",
    ),
    (
        "infinite std",
        {"parameters": [{"match": "*", "distribution": "normal", "std": float("inf")}]},
        {},
        "std is inf",
    ),
    ("shard_size zero", {"shard_size": 0}, {}, "shard_size"),
    ("shard_size beyond the dataset", {"shard_size": 10**7}, {}, "shard_size"),
    ("non-integer count", {"samples_per_circuit": 10.5}, {}, "samples_per_circuit"),
    ("top-level typo", {"sed": 1}, {}, "'sed' was unexpected"),
    ("nested typo", {"circuit": {"mode": 2}}, {}, "'mode' was unexpected"),
    (
        "parameters as a mapping",
        {"parameters": {"*": {"distribution": "constant"}}},
        {},
        "parameters",
    ),
    (
        "quadratures for the wrong number of modes",
        {"outputs": ["homodyne"], "sampling": {"homodyne": {"quadratures": ["x", "p", "x"]}}},
        {},
        "sampling.homodyne.quadratures has 3 entries for a 2-mode circuit",
    ),
    (
        "unknown quadrature",
        {"outputs": ["homodyne"], "sampling": {"homodyne": {"quadratures": ["q"]}}},
        {},
        "sampling.homodyne.quadratures.0",
    ),
    ("zero shots", {"sampling": {"shots": 0}}, {}, "sampling.shots"),
    ("dataset with a slash", {"dataset": "a/b"}, {}, "dataset"),
    ("dataset escaping results", {"dataset": ".."}, {}, "dataset"),
    (
        "missing Blackbird file",
        {"circuit": {"blackbird": "nope.xbb"}, "parameters": A_ONLY},
        {},
        "nope.xbb not found",
    ),
    (
        "Blackbird syntax error",
        {"circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Sgate(0.1) | 0\nDgate({a} | 0\nRgate(0.2) | 0\n"},
        "line 5: 'Dgate({a} | 0'",
    ),
    (
        "Blackbird parameter without a distribution",
        {"circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate({a}, {b}) | 0\n"},
        "'b'",
    ),
    (
        "distribution for a parameter the circuit lacks",
        {"circuit": {"blackbird": "c.xbb"}, "parameters": rules("a", "zzz")},
        {"c.xbb": BB_HEADER + "Dgate({a}) | 0\n"},
        "'zzz'",
    ),
    (
        "op the compiled engine cannot run",
        {"engine": "compiled", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Fock(1) | 0\nDgate({a}) | 0\n"},
        "op Fock is not supported by engine 'compiled'",
    ),
    (
        "measurement in the circuit",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate({a}) | 0\nMeasureFock() | 0\n"},
        "MeasureFock",
    ),
    # issue 13
    ("seed beyond int64", {"seed": 2**64}, {}, "seed: 18446744073709551616 is greater than"),
    ("dataset with a trailing newline", {"dataset": "abc\n"}, {}, "dataset: 'abc\\n' is not"),
    ("dataset of 300 characters", {"dataset": "a" * 300}, {}, "Name of the dataset, 1 to 100"),
    ("NaN outside the parameters", {"norm_threshold": float("nan")}, {}, "norm_threshold is nan"),
    (
        "two-mode gate on one wire",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "BSgate(0.1) | [0, 0]\nDgate({a}) | 0\n"},
        "line 4 'BSgate(0.1) | [0, 0]': BSgate acts on mode 0 twice",
    ),
    (
        "unknown gate, engine compiled",
        {"engine": "compiled", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate({a}) | 0\nFoo(0.1) | 0\n"},
        "line 5 'Foo(0.1) | 0': Foo is not a Strawberry Fields op",
    ),
    (
        "unknown gate, engine sf",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate({a}) | 0\nFoo(0.1) | 0\n"},
        "line 5 'Foo(0.1) | 0': Foo is not a Strawberry Fields op",
    ),
    (
        "negative mode index",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate({a}) | 0\nSgate(0.1) | -1\nSgate(0.2) | 1\n"},
        "line 5 'Sgate(0.1) | -1': mode -1 does not exist",
    ),
    (
        "Fock preparation on one of two modes, engine sf",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Fock(1) | 0\nDgate({a}) | 1\n"},
        "line 4 'Fock(1) | 0': Fock prepares one mode of a 2-mode circuit",
    ),
    (
        "Ket preparation, engine sf",
        {"engine": "sf", "circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {
            "c.xbb": BB_HEADER
            + "complex array psi[1, 4] =\n    0, 1, 0, 0\n\nKet(psi) | 0\nDgate({a}) | 0\n"
        },
        "line 7 'Ket(psi) | 0': op Ket is not supported",
    ),
    (
        "rules for a circuit without free parameters",
        {"circuit": {"blackbird": "c.xbb"}, "parameters": A_ONLY},
        {"c.xbb": BB_HEADER + "Dgate(0.1) | 0\n"},
        "the circuit has no free parameters, so it needs no rules; remove the parameters key",
    ),
    (
        "key the distribution does not use",
        {"parameters": [{"match": "*", "distribution": "normal", "std": 0.1, "low": 0}]},
        {},
        "parameters.0.low: distribution normal does not use low",
    ),
    (
        "more jobs than the limit",
        {"samples_per_circuit": 200_000, "shard_size": 1},
        {},
        "over the limit of 10000 (building the job graph",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "files", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, config, files, fragment):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_workflow(tmp_path, "--cores", "1", config={**SMALL, **config}, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "cvgen error:" in line]
    assert len(errors) == 1, result.stderr[-2000:]
    assert fragment in errors[0]
    assert not (tmp_path / "results").exists()


def test_at_least_twenty_cases():
    assert len(CASES) >= 20


# Edge inputs that are valid: each builds its dataset (whole-number floats reach the jobs as ints;
# a circuit without free parameters needs no rules) or plans it (an empty config: the default).
ACCEPTED = [
    (
        "whole-number floats",
        {"seed": 5.0, "samples_per_circuit": 8.0, "shard_size": 4.0, "batch_size": 4.0,
         "circuit": {"modes": 1.0, "layers": 1.0, "cutoff": 6.0}},
        {},
        [],
    ),
    (
        "circuit without free parameters",
        {"circuit": {"blackbird": "c.xbb", "cutoff": 4}},
        {"c.xbb": BB_HEADER + "Dgate(0.3) | 0\n"},
        [],
    ),
    ("empty config", {}, {}, ["-n"]),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "files", "args"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_valid_edge_inputs_build(tmp_path, config, files, args):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    small = SMALL if config else {}
    result = run_workflow(tmp_path, "--cores", "1", *args, config={**small, **config})
    assert result.returncode == 0, result.stderr[-3000:]
    if not args:
        assert list(tmp_path.glob("results/*/dataset.h5"))

"""Drawing free-parameter values, keyed on fixed logical blocks so results never depend on sharding.

Every value comes from a stream (cvgen.streams) keyed on (root seed, stream, circuit, parameter
name, block of SAMPLE_BLOCK samples). A value therefore depends only on its logical position: not
on shard size, shard count, the number of cores, or which other parameters exist. Growing
`samples_per_circuit` or `n_circuits` keeps every value already drawn.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

from cvgen.errors import CvgenError
from cvgen.streams import PER_CIRCUIT_STREAM, PER_SAMPLE_STREAM, SAMPLE_BLOCK, keyed, name_key


@dataclass
class DrawnParameters:
    """All parameter values of a dataset: per-circuit (C x Pc) and per-sample (N x Ps)."""

    circuit_names: tuple[str, ...]
    circuit_values: np.ndarray
    sample_names: tuple[str, ...]
    sample_values: np.ndarray
    circuit_index: np.ndarray

    def batch_args(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Values of every parameter for samples [start, stop), as engine `args` arrays."""
        return self.args_at(slice(start, stop))

    def args_at(self, rows) -> dict[str, np.ndarray]:
        """Values of every parameter for the samples `rows` (a slice or an index array)."""
        args = {name: self.sample_values[rows, j] for j, name in enumerate(self.sample_names)}
        circuits = self.circuit_index[rows]
        for j, name in enumerate(self.circuit_names):
            args[name] = self.circuit_values[circuits, j]
        return args


def assign_distributions(
    names: tuple[str, ...], rules: list[dict], all_used: bool = True
) -> dict[str, dict]:
    """Map each parameter name to the first rule whose `match` glob matches it.

    Every name must be matched; with `all_used`, every rule must match a name not matched by an
    earlier rule (a rule the user wrote that matches nothing is a typo; the default rules may
    match nothing, and drawing from a validated config checks nothing twice).
    """
    assigned = {}
    used = set()
    for name in names:
        matching = (i for i, rule in enumerate(rules) if fnmatch.fnmatchcase(name, rule["match"]))
        index = next(matching, None)
        if index is None:
            raise CvgenError(
                f"parameters: no rule matches circuit parameter {name!r}; add one "
                f"(e.g. match: '{name}', or match: '*' last)"
            )
        assigned[name] = rules[index]
        used.add(index)
    unused = [i for i in range(len(rules)) if i not in used]
    if all_used and unused:
        rule = f"parameters[{unused[0]}] (match {rules[unused[0]]['match']!r})"
        if not names:
            raise CvgenError(
                f"{rule}: the circuit has no free parameters, so it needs no rules; remove the "
                f"parameters key"
            )
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise CvgenError(
            f"{rule} matches no circuit parameter not already matched by an earlier rule (the "
            f"circuit has {shown}); remove it, fix its pattern or move it up"
        )
    return assigned


def draw_plan_parameters(plan) -> DrawnParameters:
    """Every parameter value of a dataset plan (cvgen.plan.DatasetPlan)."""
    return draw_parameters(
        plan.circuit.parameter_names,
        plan.config["parameters"],
        plan.seed,
        plan.n_circuits,
        plan.samples_per_circuit,
    )


def draw_dataset_parameters(config: dict, names: tuple[str, ...]) -> DrawnParameters:
    """Every value of the circuit parameters `names` for a validated config's whole dataset."""
    return draw_parameters(
        names,
        config["parameters"],
        config["seed"],
        config["n_circuits"],
        config["samples_per_circuit"],
    )


def draw_parameters(
    names: tuple[str, ...], rules: list[dict], seed: int, n_circuits: int, per_circuit: int
) -> DrawnParameters:
    """Draw every parameter value of the dataset, deterministically from the root seed."""
    specs = assign_distributions(names, rules, all_used=False)  # checked by build_plan
    circuit_names = tuple(n for n in names if specs[n]["vary"] == "per_circuit")
    sample_names = tuple(n for n in names if specs[n]["vary"] == "per_sample")
    circuit_values = np.empty((n_circuits, len(circuit_names)))
    sample_values = np.empty((n_circuits * per_circuit, len(sample_names)))
    for c in range(n_circuits):
        for j, name in enumerate(circuit_names):
            rng = _rng(seed, PER_CIRCUIT_STREAM, c, name)
            circuit_values[c, j] = _draw(specs[name], rng, 1)[0]
        rows = slice(c * per_circuit, (c + 1) * per_circuit)
        for j, name in enumerate(sample_names):
            sample_values[rows, j] = _draw_samples(specs[name], seed, c, name, per_circuit)
    return DrawnParameters(
        circuit_names=circuit_names,
        circuit_values=circuit_values,
        sample_names=sample_names,
        sample_values=sample_values,
        circuit_index=np.repeat(np.arange(n_circuits, dtype=np.int64), per_circuit),
    )


def _draw_samples(spec: dict, seed: int, circuit: int, name: str, count: int) -> np.ndarray:
    """Per-sample values of one parameter in one circuit, drawn block by block."""
    n_blocks = -(-count // SAMPLE_BLOCK)
    blocks = [
        _draw(spec, _rng(seed, PER_SAMPLE_STREAM, circuit, name, block), SAMPLE_BLOCK)
        for block in range(n_blocks)
    ]
    return np.concatenate(blocks)[:count]


def _rng(seed: int, stream: int, circuit: int, name: str, block: int = 0) -> np.random.Generator:
    return keyed(seed, stream, circuit, name_key(name), block)


def _draw(spec: dict, rng: np.random.Generator, size: int) -> np.ndarray:
    kind = spec["distribution"]
    if kind == "normal":
        return rng.normal(spec["mean"], spec["std"], size)
    if kind == "uniform":
        return rng.uniform(spec["low"], spec["high"], size)
    return np.full(size, float(spec["value"]))

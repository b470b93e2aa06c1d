"""The benchmark problem: the QNN template and drawn parameters, one builder for every benchmark
and test, so that all of them time and check the same circuits on the same values."""

from __future__ import annotations

from cvgen.circuits import CircuitSpec, circuit_from_config, compile_circuit
from cvgen.config import apply_schema
from cvgen.params import DrawnParameters, draw_parameters

__all__ = ["SEED", "qnn_problem"]

SEED = 1


def qnn_problem(
    modes: int,
    layers: int,
    cutoff: int,
    samples: int,
    circuits: int = 1,
    truncation: str = "per_mode",
    dtype: str = "complex64",
    parameters: list[dict] | None = None,
    seed: int = SEED,
) -> tuple[CircuitSpec, DrawnParameters]:
    """The compiled QNN circuit and `circuits` weight draws with `samples` input draws each.

    Parameters follow the config's default distributions unless `parameters` (config rules) are
    given. The values do not depend on the cutoff, truncation or dtype, and circuit 0's values
    not on `circuits`, so runs of one problem at different settings see the same samples.
    """
    config = {
        "circuit": {
            "modes": modes,
            "layers": layers,
            "cutoff": cutoff,
            "dtype": dtype,
            "truncation": truncation,
        }
    }
    if parameters is not None:
        config["parameters"] = parameters
    config = apply_schema(config)
    circuit = compile_circuit(circuit_from_config(config))
    drawn = draw_parameters(circuit.parameter_names, config["parameters"], seed, circuits, samples)
    return circuit, drawn

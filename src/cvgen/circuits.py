"""Circuits: the CV-QNN template and Blackbird scripts, with free parameters.

Parameter names and modes are known without importing Strawberry Fields (which pulls in
TensorFlow, seconds of start-up), so the Snakefile and config checks stay fast. SF is imported
when a Program is built: to compile a Blackbird script to cvgen's op list (`compile_circuit`,
once, in prepare_params) and by the SF engine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cvgen.errors import CvgenError
from cvgen.program import (
    NATIVE_GATES,
    Op,
    ops_from_gates,
    ops_from_json,
    ops_from_program,
    ops_json,
)

# A gate as plain data: (SF op name, arguments, wires). A str argument is a free parameter.
Gate = tuple[str, tuple[str | float, ...], tuple[int, ...]]

# Ops whose output is not a pure state of the whole register, or that sample: the ket-based
# observables cannot handle them.
UNSUPPORTED_OP_PREFIXES = ("Measure", "LossChannel", "ThermalLossChannel")


@dataclass(frozen=True)
class CircuitSpec:
    """Everything needed to build the circuit in any engine: structure, cutoff, precision."""

    modes: int
    cutoff: int
    dtype: str
    parameter_names: tuple[str, ...]
    gates: tuple[Gate, ...] | None = None
    blackbird_text: str | None = None
    op_names: tuple[str, ...] = ()  # SF ops the circuit applies, known without importing SF
    # Which Fock states are kept: "per_mode" (every mode below cutoff) or "total" (fewer than
    # cutoff photons in all modes together; compiled engine only, see cvgen.engines.total_photon).
    truncation: str = "per_mode"
    ops: tuple[Op, ...] | None = None  # the compiled op list (compile_circuit), None until then

    def to_dict(self) -> dict:
        """Plain JSON-able values (params.h5 stores them; `circuit_from_dict` reads them)."""
        values = dataclasses.asdict(self)
        values["ops"] = None if self.ops is None else ops_json(self.ops)
        return values

    def build_program(self):
        """Build the SF Program once, with symbolic parameters bound per batch via `args`."""
        import strawberryfields as sf

        if self.blackbird_text is not None:
            import blackbird

            return sf.io.to_program(blackbird.loads(self.blackbird_text))
        from strawberryfields import ops

        program = sf.Program(self.modes)
        symbols = program.params(*self.parameter_names)
        if len(self.parameter_names) == 1:  # SF returns a bare parameter for a single name
            symbols = [symbols]
        free = dict(zip(self.parameter_names, symbols, strict=True))
        with program.context as q:
            for name, args, wires in self.gates:
                op = getattr(ops, name)(*(free[a] if isinstance(a, str) else a for a in args))
                op | tuple(q[w] for w in wires)
        return program


def circuit_from_dict(values: dict) -> CircuitSpec:
    """The circuit `CircuitSpec.to_dict` wrote."""
    values = dict(values)
    if values["gates"] is not None:
        values["gates"] = tuple(
            (name, tuple(args), tuple(wires)) for name, args, wires in values["gates"]
        )
    values["ops"] = None if values["ops"] is None else ops_from_json(values["ops"])
    for key in ("parameter_names", "op_names"):
        values[key] = tuple(values[key])
    return CircuitSpec(**values)


def compile_circuit(circuit: CircuitSpec) -> CircuitSpec:
    """The circuit with its op list: a template's gates as they are (no SF import when all are
    native), a Blackbird script through SF's Fock compiler."""
    if circuit.ops is not None:
        return circuit
    if circuit.gates is not None and all(name in NATIVE_GATES for name, _, _ in circuit.gates):
        return dataclasses.replace(circuit, ops=ops_from_gates(circuit.gates))
    return dataclasses.replace(circuit, ops=ops_from_program(circuit.build_program()))


def circuit_from_config(config: dict, blackbird_text: str | None = None) -> CircuitSpec:
    """The circuit a config describes; a Blackbird script is read from disk unless given."""
    circuit = config["circuit"]
    if circuit.get("blackbird"):
        if blackbird_text is None:
            path = Path(circuit["blackbird"])
            if not path.is_file():
                raise CvgenError(
                    f"circuit.blackbird: file {path} not found (paths are relative to the "
                    f"working directory); fix the path or use circuit.template"
                )
            blackbird_text = path.read_text()
        return blackbird_circuit(
            blackbird_text, circuit["cutoff"], circuit["dtype"], circuit["truncation"]
        )
    gates = tuple(qnn_gates(circuit["modes"], circuit["layers"]))
    return CircuitSpec(
        modes=circuit["modes"],
        cutoff=circuit["cutoff"],
        dtype=circuit["dtype"],
        parameter_names=parameter_names(gates),
        gates=gates,
        op_names=tuple(dict.fromkeys(name for name, _, _ in gates)),
        truncation=circuit["truncation"],
    )


def blackbird_circuit(
    text: str, cutoff: int, dtype: str, truncation: str = "per_mode"
) -> CircuitSpec:
    """Parse a Blackbird script; reject ops whose result is not a pure ket."""
    import blackbird

    try:
        program = blackbird.loads(text)
    except Exception as err:  # the parser raises many unrelated types on bad syntax
        raise CvgenError(
            f"circuit.blackbird: cannot parse the script ({_first_bad_line(text)}); fix its syntax"
        ) from err
    for op in program.operations:
        if op["op"].startswith(UNSUPPORTED_OP_PREFIXES):
            raise CvgenError(
                f"circuit.blackbird: op {op['op']} is not supported (outputs are computed from "
                f"the pure output ket); remove measurements and channels from the script"
            )
    if not program.modes:
        raise CvgenError("circuit.blackbird: the script applies no ops; add gates")
    return CircuitSpec(
        modes=max(program.modes) + 1,
        cutoff=cutoff,
        dtype=dtype,
        parameter_names=tuple(sorted(program.parameters)),
        blackbird_text=text,
        op_names=tuple(dict.fromkeys(op["op"] for op in program.operations)),
        truncation=truncation,
    )


def _first_bad_line(text: str) -> str:
    """'line N: ...' of the first line after which the script no longer parses.

    Blackbird's parser (with current antlr) fails inside its own error reporting, losing the
    line number, so the script is parsed again line by line to find it.
    """
    import blackbird

    lines = text.splitlines()
    body = next((i for i, line in enumerate(lines) if line.strip().startswith("version")), -1) + 1
    for end in range(body + 1, len(lines) + 1):
        if not lines[end - 1].strip():
            continue
        try:
            blackbird.loads("\n".join(lines[:end]) + "\n")
        except Exception:
            return f"line {end}: {lines[end - 1].strip()!r}"
    return "the script as a whole"


def parameter_names(gates: tuple[Gate, ...]) -> tuple[str, ...]:
    """Free parameter names in order of first use."""
    names = (a for _, args, _ in gates for a in args if isinstance(a, str))
    return tuple(dict.fromkeys(names))


def qnn_gates(modes: int, layers: int) -> list[Gate]:
    """Dgate input encoding, then `layers` CV-QNN layers (Killoran et al., PRR 1, 033063)."""
    gates: list[Gate] = [("Dgate", (f"input_{m}", 0.0), (m,)) for m in range(modes)]
    for layer in range(layers):
        gates += interferometer_gates(modes, f"l{layer}_int1")
        gates += [("Sgate", (f"l{layer}_squeeze_{m}",), (m,)) for m in range(modes)]
        gates += interferometer_gates(modes, f"l{layer}_int2")
        gates += [
            ("Dgate", (f"l{layer}_disp_r_{m}", f"l{layer}_disp_phi_{m}"), (m,))
            for m in range(modes)
        ]
        gates += [("Kgate", (f"l{layer}_kerr_{m}",), (m,)) for m in range(modes)]
    return gates


def interferometer_gates(modes: int, prefix: str) -> list[Gate]:
    """A rectangular (Clements) mesh of M(M-1)/2 BSgates, then Rgates on max(1, M-1) modes."""
    gates: list[Gate] = []
    count = 0
    for column in range(modes):
        for top in range(column % 2, modes - 1, 2):
            gates.append(
                ("BSgate", (f"{prefix}_theta_{count}", f"{prefix}_phi_{count}"), (top, top + 1))
            )
            count += 1
    gates += [("Rgate", (f"{prefix}_rot_{m}",), (m,)) for m in range(max(1, modes - 1))]
    return gates

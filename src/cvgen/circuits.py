"""Circuits: the CV-QNN template and Blackbird scripts, with free parameters.

Parameter names and modes are known without importing Strawberry Fields (which pulls in
TensorFlow, seconds of start-up), so the Snakefile and config checks stay fast. SF is imported
when a Program is built: to compile a Blackbird script to cvgen's op list (`compile_circuit`,
once, in prepare_params) and by the SF engine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from cvgen.errors import CvgenError
from cvgen.program import (
    GATE_SIGNATURES,
    NATIVE_GATES,
    PREPARATION_SIGNATURES,
    REFUSED_OPS,
    SF_OP_NAMES,
    Op,
    Signature,
    check_ops,
    compiled_runs,
    ops_from_gates,
    ops_from_json,
    ops_from_program,
    ops_json,
    unsupported,
    unsupported_function,
)

# A gate as plain data: (SF op name, arguments, wires). A str argument is a free parameter.
Gate = tuple[str, tuple[str | float, ...], tuple[int, ...]]

# Most modes a circuit may have (the schema's circuit.modes says so too): keeps every size the
# cost and memory models compute a finite float.
MAX_MODES = 64


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

            program = blackbird.loads(self.blackbird_text)
            for op in program.operations:  # SF's TF backend fails on Coherent(0): int dtype
                _real_arguments_as_floats(op)
            return sf.io.to_program(program)
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


def _real_arguments_as_floats(op: dict) -> None:
    """Make an op's whole-number literal arguments floats where it takes real numbers."""
    signature = GATE_SIGNATURES.get(op["op"]) or PREPARATION_SIGNATURES.get(op["op"])
    if signature is None or signature.values != "real" or "args" not in op:
        return
    op["args"] = [_as_float(value) for value in op["args"]]
    op["kwargs"] = {key: _as_float(value) for key, value in op["kwargs"].items()}


def _as_float(value):
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


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
            blackbird_text = _read_script(Path(circuit["blackbird"]))
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


def _read_script(path: Path) -> str:
    """The text of a Blackbird script file, or one CvgenError line saying why not."""
    shown = str(path) if str(path).isprintable() else repr(str(path))
    if not path.is_file():
        raise CvgenError(
            f"circuit.blackbird: file {shown} not found (paths are relative to the working "
            f"directory); fix the path or use circuit.template"
        )
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CvgenError(
            f"circuit.blackbird: cannot read {shown} as text ({type(err).__name__}); give a "
            f"Blackbird script"
        ) from None


def blackbird_circuit(
    text: str, cutoff: int, dtype: str, truncation: str = "per_mode"
) -> CircuitSpec:
    """Parse a Blackbird script; refuse, naming its line, every op whose job would fail or whose
    result is not a pure ket (what either engine refuses: `check_engine`)."""
    import blackbird

    try:
        program = blackbird.loads(text)
    except Exception as err:  # the parser raises many unrelated types on bad syntax
        raise CvgenError(
            f"circuit.blackbird: cannot parse the script ({_first_bad_line(text)}); fix its syntax"
        ) from err
    if program.programtype["name"] is not None:
        raise CvgenError(
            f"circuit.blackbird: a program of type {program.programtype['name']} is not "
            f"supported; remove the `type` line"
        )
    if program.target["options"]:
        raise CvgenError(
            f"circuit.blackbird: the target line sets {', '.join(program.target['options'])}, "
            f"which the config decides (circuit.cutoff, batch_size); remove its options"
        )
    if not program.operations:
        raise CvgenError("circuit.blackbird: the script applies no ops; add gates")
    acted: set[int] = set()
    for index, op in enumerate(program.operations):
        problem = _op_problem(op, cutoff, acted)
        if problem:
            raise CvgenError(f"circuit.blackbird {_line_of(text, index)}: {problem}")
        acted.update(op["modes"])
    return CircuitSpec(
        modes=max(program.modes) + 1,
        cutoff=cutoff,
        dtype=dtype,
        parameter_names=tuple(sorted(program.parameters)),
        blackbird_text=text,
        op_names=tuple(dict.fromkeys(op["op"] for op in program.operations)),
        truncation=truncation,
    )


def check_engine(circuit: CircuitSpec, engine: str) -> None:
    """Refuse, naming the Blackbird line, an op the configured engine cannot run."""
    if circuit.blackbird_text is None:
        if engine == "compiled":
            check_ops(circuit.op_names)
        return
    import blackbird

    for index, op in enumerate(blackbird.loads(circuit.blackbird_text).operations):
        name = op["op"]
        problem = None
        if name in ("Vacuum", "Vac") and engine == "sf" and circuit.modes > 1:
            problem = (
                f"{name} prepares one mode of a {circuit.modes}-mode circuit, which SF's TF "
                f"backend does by tracing it out, leaving the output state mixed; remove it "
                f"(every run starts from the vacuum)"
            )
        elif name in PREPARATION_SIGNATURES and circuit.modes > 1:
            problem = (
                f"{name} prepares one mode of a {circuit.modes}-mode circuit, which leaves the "
                f"output state mixed (outputs are computed from a pure ket); apply gates to the "
                f"vacuum instead (Dgate for Coherent, Sgate for Squeezed)"
            )
        elif engine == "compiled" and not compiled_runs(name):
            problem = str(unsupported(name))
        elif engine == "compiled":
            function = next(filter(None, map(unsupported_function, _arguments(op))), None)
            if function:
                problem = (
                    f"{name} uses {function}, which engine 'compiled' does not evaluate; rewrite "
                    f"the argument or use engine: sf"
                )
        if problem:
            where = _line_of(circuit.blackbird_text, index)
            raise CvgenError(f"circuit.blackbird {where}: {problem}")


def _op_problem(op: dict, cutoff: int, acted: set[int]) -> str | None:
    """What is wrong with one Blackbird op, engine aside (None: nothing)."""
    name = op["op"]
    if name not in SF_OP_NAMES:
        gates = [gate for gate in GATE_SIGNATURES if gate not in ("Vacuum", "Vac", "Fourier")]
        return f"{name} is not a Strawberry Fields op; use one of its gates ({', '.join(gates)})"
    if name in REFUSED_OPS:
        return f"op {name} is not supported: {REFUSED_OPS[name]}"
    signature = GATE_SIGNATURES.get(name) or PREPARATION_SIGNATURES[name]
    problem = _arguments_problem(name, op, signature, cutoff)
    if problem:
        return problem
    modes = op["modes"]
    wanted = signature.wires
    if wanted is None:  # a matrix op (its matrix checked above): as many modes as it says
        matrix = op["args"][0] if op["args"] else op["kwargs"][signature.params[0]]
        wanted = signature.modes_of(name, matrix)
    if len(modes) != wanted:
        return f"{name} acts on {wanted} mode{'s' * (wanted != 1)}, not {len(modes)}; fix the modes"
    if len(set(modes)) != len(modes):
        return f"{name} acts on mode {_repeated(modes)} twice; give distinct modes"
    for mode in modes:
        if not 0 <= mode < MAX_MODES:
            return f"mode {mode} does not exist: modes are numbered 0 to {MAX_MODES - 1}"
    if name in ("Vacuum", "Vac") and acted.intersection(modes):
        return (
            f"{name} resets mode {min(acted.intersection(modes))} after other ops acted on it, "
            f"which leaves the output state mixed; remove it"
        )
    return None


def _arguments_problem(name: str, op: dict, signature: Signature, cutoff: int) -> str | None:
    """What is wrong with an op's arguments: their number, names and values (None: nothing)."""
    accepted = f"{name}({', '.join(signature.params)})"
    if signature.instance:
        return f"{name} takes no arguments; write `{name} | mode`" if "args" in op else None
    if "args" not in op:
        return f"{name} needs parentheses: write {accepted}"
    args, kwargs = list(op["args"]), dict(op["kwargs"])
    unknown = [key for key in kwargs if key not in signature.params[len(args) :]]
    if len(args) > len(signature.params) or unknown:
        return f"cvgen runs {name} with the arguments {accepted} only; remove the others"
    given = args + [kwargs[key] for key in signature.params[len(args) :] if key in kwargs]
    missing = [key for key in signature.params[len(args) : signature.required] if key not in kwargs]
    if missing:
        return f"{name} needs its argument {missing[0]}: write {accepted}"
    if signature.values == "matrix":
        return _matrix_problem(name, given[0])
    if signature.values == "count":
        n = given[0] if given else 0
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < cutoff:
            return f"{name}(n) needs a whole number 0 <= n < cutoff {cutoff}, not {n}"
        return None
    for value in given:
        problem = _real_problem(value)
        if problem:
            return f"{name}: argument {_shown(value)} {problem}"
    return None


def _real_problem(value) -> str | None:
    """Why `value` is not a real gate argument: a finite number or an expression of free
    parameters (None: it is one)."""
    import numbers

    import sympy

    if isinstance(value, sympy.Basic):
        if value.has(sympy.I) or value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            return "is not real and finite; use real numbers"
        return None  # the parser keeps only free parameters as symbols
    if type(value).__name__ == "RegRefTransform":  # an expression of a measured mode
        return "uses a measured value; cvgen runs no measurements"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "is not a real number; use a real number or an expression of free parameters"
    if not math.isfinite(value):
        return "is not finite; use a finite number"
    return None


def _matrix_problem(name: str, matrix) -> str | None:
    """Why `matrix` cannot be the matrix of op `name` (None: it can)."""
    import numpy as np

    if not isinstance(matrix, np.ndarray) or not np.issubdtype(matrix.dtype, np.number):
        return f"{name} needs a numeric array (declare one with `complex array U[N, N] =`)"
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        return f"{name} needs a square matrix, not an array of shape {matrix.shape}"
    if not np.all(np.isfinite(matrix)):
        return f"{name}: the matrix has entries that are not finite"
    size = matrix.shape[0]
    if name == "Interferometer" and not np.allclose(
        matrix @ matrix.conj().T, np.eye(size), atol=1e-6, rtol=0
    ):
        return f"{name}: U is not unitary (to 1e-6); give a unitary matrix"
    if name == "GaussianTransform":
        if size % 2 or np.iscomplexobj(matrix) and np.any(matrix.imag):
            return f"{name}: S must be a real 2N x 2N symplectic matrix"
        half = size // 2
        omega = np.block(
            [[np.zeros((half, half)), np.eye(half)], [-np.eye(half), np.zeros((half, half))]]
        )
        if not np.allclose(matrix.real @ omega @ matrix.real.T, omega, atol=1e-10, rtol=0):
            return f"{name}: S is not symplectic (to 1e-10); give a symplectic matrix"
    if name in ("GraphEmbed", "BipartiteGraphEmbed") and not np.allclose(
        matrix, matrix.T, atol=1e-6, rtol=0
    ):
        return f"{name}: A is not symmetric (to 1e-6); give a symmetric adjacency matrix"
    return None


def _arguments(op: dict) -> list:
    return list(op.get("args", [])) + list(op.get("kwargs", {}).values())


def _repeated(modes: list[int]) -> int:
    return next(mode for i, mode in enumerate(modes) if mode in modes[:i])


def _shown(value) -> str:
    """`value` on one line of at most 40 characters (an array prints on several)."""
    text = " ".join(str(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _line_of(text: str, index: int) -> str:
    """'line N \'...\'' of the statement that makes the script's op number `index` (0-based):
    the first line after which the script parses to more than `index` ops."""
    import blackbird

    lines = text.splitlines()
    for end in range(1, len(lines) + 1):
        if not lines[end - 1].strip():
            continue
        try:
            count = len(blackbird.loads("\n".join(lines[:end]) + "\n").operations)
        except Exception:  # a prefix that stops inside a statement or block does not parse
            continue
        if count > index:
            return f"line {end} {lines[end - 1].strip()!r}"
    return f"op {index + 1}"


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

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
    CHANNEL_OPS,
    CHANNEL_SIGNATURES,
    GATE_SIGNATURES,
    MIXED_OPS,
    NATIVE_GATES,
    PREPARATION_SIGNATURES,
    REFUSED_OPS,
    SF_OP_NAMES,
    Op,
    Signature,
    check_ops,
    compiled_runs,
    gaussian_ops_from_program,
    gaussian_runs,
    not_gaussian,
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
    signature = _signature(op["op"])
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


def compile_circuit(circuit: CircuitSpec, engine: str = "compiled") -> CircuitSpec:
    """The circuit with its op list for `engine`: for the compiled engine a template's gates as
    they are (no SF import when all are native), a Blackbird script through SF's Fock compiler;
    for the Gaussian engine the ops as written, graph embeddings decomposed by SF."""
    if circuit.ops is not None:
        return circuit
    if engine == "gaussian":
        return dataclasses.replace(circuit, ops=gaussian_ops_from_program(circuit.build_program()))
    if circuit.gates is not None and all(
        name in NATIVE_GATES or name in CHANNEL_OPS for name, _, _ in circuit.gates
    ):
        return dataclasses.replace(circuit, ops=ops_from_gates(circuit.gates))
    return dataclasses.replace(circuit, ops=ops_from_program(circuit.build_program()))


def circuit_from_config(config: dict, blackbird_text: str | None = None) -> CircuitSpec:
    """The circuit a config describes; a Blackbird script is read from disk unless given."""
    circuit = config["circuit"]
    if circuit["template"] == "gbs" and not circuit.get("blackbird"):
        from cvgen.gaussian.templates import gbs_ops

        ops = gbs_ops(circuit["gbs"], circuit["modes"], config["seed"])
        return CircuitSpec(
            modes=max(max(op.wires) for op in ops) + 1,
            cutoff=circuit["cutoff"],
            dtype=circuit["dtype"],
            parameter_names=(),
            op_names=tuple(dict.fromkeys(op.name for op in ops)),
            truncation=circuit["truncation"],
            ops=ops,
        )
    if circuit.get("blackbird"):
        if blackbird_text is None:
            blackbird_text = _read_script(Path(circuit["blackbird"]))
        return blackbird_circuit(
            blackbird_text, circuit["cutoff"], circuit["dtype"], circuit["truncation"]
        )
    loss = circuit.get("loss") or {}
    gates = tuple(
        qnn_gates(
            circuit["modes"],
            circuit["layers"],
            loss.get("per_layer"),
            loss.get("before_detection"),
        )
    )
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
    for index, op in enumerate(program.operations):
        problem = _op_problem(op, cutoff)
        if problem:
            raise CvgenError(f"circuit.blackbird {_line_of(text, index)}: {problem}")
    return CircuitSpec(
        modes=max(program.modes) + 1,
        cutoff=cutoff,
        dtype=dtype,
        parameter_names=tuple(sorted(program.parameters)),
        blackbird_text=text,
        op_names=tuple(dict.fromkeys(op["op"] for op in program.operations)),
        truncation=truncation,
    )


def choose_engine(requested: str, circuit: CircuitSpec) -> tuple[str, str]:
    """The engine that runs `circuit` and why: `auto` takes the exact Gaussian engine when every
    op is Gaussian, the compiled Fock engine otherwise; an explicit choice is kept."""
    if requested != "auto":
        return requested, "set in the config"
    fock_only = [name for name in circuit.op_names if not gaussian_runs(name)]
    if not fock_only:
        return "gaussian", "every op is Gaussian: exact means and covariances, no truncation"
    return "compiled", f"{fock_only[0]} is not Gaussian: Fock-basis simulation at the cutoff"


def check_engine(circuit: CircuitSpec, engine: str) -> None:
    """Refuse, naming the Blackbird line, an op the engine cannot run: a non-Gaussian op for
    engine gaussian; for the Fock engines (whose outputs come from one pure ket per sample) a
    mixed state's op, a preparation on one mode of several, or a mode reset after use."""
    if circuit.blackbird_text is None:
        if engine == "compiled":
            check_ops(circuit.op_names)
        if engine == "gaussian":
            check_gaussian(circuit.op_names)
        return
    import blackbird

    acted: set[int] = set()
    for index, op in enumerate(blackbird.loads(circuit.blackbird_text).operations):
        problem = _engine_problem(op, circuit, engine, acted)
        acted.update(op["modes"])
        if problem:
            where = _line_of(circuit.blackbird_text, index)
            raise CvgenError(f"circuit.blackbird {where}: {problem}")


def check_gaussian(op_names) -> None:
    for name in op_names:
        if not gaussian_runs(name):
            raise not_gaussian(name)


def _engine_problem(op: dict, circuit: CircuitSpec, engine: str, acted: set[int]) -> str | None:
    """What keeps `engine` from running one Blackbird op (None: nothing)."""
    name = op["op"]
    if engine == "gaussian":
        return None if gaussian_runs(name) else str(not_gaussian(name))
    if name in CHANNEL_OPS and engine == "compiled":
        return None  # density matrices or trajectories (cvgen.engines.noisy)
    if name in MIXED_OPS and engine == "compiled":
        return (
            f"{name} is not run by engine 'compiled' (it runs the channels "
            f"{', '.join(CHANNEL_OPS)}); use engine: gaussian (exact for Gaussian circuits)"
        )
    if name in MIXED_OPS:
        return (
            f"{name} makes the output state mixed, and engine {engine!r} computes outputs from "
            f"one pure ket per sample; use engine: gaussian (exact for Gaussian circuits) or "
            f"engine: auto"
        )
    if name in ("Vacuum", "Vac") and acted.intersection(op["modes"]):
        return (
            f"{name} resets mode {min(acted.intersection(op['modes']))} after other ops acted on "
            f"it, which leaves the output state mixed; remove it"
        )
    if name in ("Vacuum", "Vac") and engine == "sf" and circuit.modes > 1:
        return (
            f"{name} prepares one mode of a {circuit.modes}-mode circuit, which SF's TF "
            f"backend does by tracing it out, leaving the output state mixed; remove it "
            f"(every run starts from the vacuum)"
        )
    if name in PREPARATION_SIGNATURES and circuit.modes > 1:
        return (
            f"{name} prepares one mode of a {circuit.modes}-mode circuit, which leaves the "
            f"output state mixed (outputs are computed from a pure ket); apply gates to the "
            f"vacuum instead (Dgate for Coherent, Sgate for Squeezed)"
        )
    if engine == "compiled" and not compiled_runs(name):
        return str(unsupported(name))
    if engine == "compiled":
        function = next(filter(None, map(unsupported_function, _arguments(op))), None)
        if function:
            return (
                f"{name} uses {function}, which engine 'compiled' does not evaluate; rewrite "
                f"the argument or use engine: sf"
            )
    return None


def _op_problem(op: dict, cutoff: int) -> str | None:
    """What is wrong with one Blackbird op, engine aside (None: nothing)."""
    name = op["op"]
    if name not in SF_OP_NAMES:
        gates = [gate for gate in GATE_SIGNATURES if gate not in ("Vacuum", "Vac", "Fourier")]
        return f"{name} is not a Strawberry Fields op; use one of its gates ({', '.join(gates)})"
    if name in REFUSED_OPS:
        return f"op {name} is not supported: {REFUSED_OPS[name]}"
    signature = _signature(name)
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
    return None


def _signature(name: str) -> Signature | None:
    return (
        GATE_SIGNATURES.get(name)
        or PREPARATION_SIGNATURES.get(name)
        or CHANNEL_SIGNATURES.get(name)
    )


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
        problem = _matrix_problem(name, given[0])
        extra = (_real_problem(value) for value in given[1:])
        return problem or next((f"{name}: {p}" for p in extra if p), None)
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


def has_channels(circuit: CircuitSpec) -> bool:
    """Whether the circuit applies a channel the compiled engine runs (its state is mixed)."""
    return any(name in CHANNEL_OPS for name in circuit.op_names)


def qnn_gates(
    modes: int,
    layers: int,
    per_layer: float | str | None = None,
    before_detection: float | str | None = None,
) -> list[Gate]:
    """Dgate input encoding, then `layers` CV-QNN layers (Killoran et al., PRR 1, 033063);
    optionally LossChannel(T) on every mode after each layer and/or once more at the end
    (T a number, or a free parameter's name)."""
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
        if per_layer is not None:
            gates += [("LossChannel", (per_layer,), (m,)) for m in range(modes)]
    if before_detection is not None:
        gates += [("LossChannel", (before_detection,), (m,)) for m in range(modes)]
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

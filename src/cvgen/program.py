"""cvgen's own op list: a circuit compiled once to the gates the Fock engines run.

SF parses Blackbird and decomposes ops (Interferometer, Xgate, ...) into its Fock primitives;
that happens once, in prepare_params, and the result is stored in params.h5 as JSON. A job of
the compiled engine reads the op list and never imports strawberryfields, thewalrus or sympy.

A gate argument is an expression tree: a number, a parameter name, or [function, *arguments]
with the function one of FUNCTIONS (sympy's names), evaluated by any array namespace.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import numpy as np

from cvgen.errors import CvgenError

__all__ = [
    "ALIASES",
    "CHANNEL_OPS",
    "CHANNEL_SIGNATURES",
    "FUNCTIONS",
    "GATE_SIGNATURES",
    "GAUSSIAN_OPS",
    "MATRIX",
    "MIXED_OPS",
    "NATIVE_GATES",
    "PREPARATION_SIGNATURES",
    "REFUSED_OPS",
    "SF_OP_NAMES",
    "Op",
    "Signature",
    "check_ops",
    "compiled_runs",
    "unsupported_function",
    "evaluate",
    "gaussian_ops_from_program",
    "gaussian_runs",
    "names_in",
    "not_gaussian",
    "ops_from_gates",
    "ops_from_json",
    "ops_from_program",
    "ops_json",
]

# The gates the compiled engine applies directly; SF's Fock compiler decomposes the rest.
NATIVE_GATES = ("Dgate", "Sgate", "Vgate", "Rgate", "Kgate", "BSgate", "MZgate", "S2gate", "CKgate")
# Their arguments' defaults, as in SF's ops (Dgate(r, phi=0.0), BSgate(theta=pi/4, phi=0.0)).
DEFAULTS = {
    "Dgate": (None, 0.0),
    "Sgate": (None, 0.0),
    "S2gate": (None, 0.0),
    "BSgate": (math.pi / 4, 0.0),
}
SKIPPED = ("Vacuum",)  # a no-op on the vacuum every run starts from (refused after other ops)
# Ops SF's Fock compiler decomposes into the gates above.
DECOMPOSED = (
    "Interferometer", "GraphEmbed", "BipartiteGraphEmbed", "GaussianTransform",
    "Pgate", "CXgate", "CZgate", "sMZgate", "Xgate", "Zgate", "Fouriergate",
)  # fmt: skip
# The ops the Gaussian engine applies directly (cvgen.engines.gaussian), exactly, as symplectic
# maps, state preparations and channels; GraphEmbed and BipartiteGraphEmbed are decomposed by SF
# into squeezers and an Interferometer once, at compile time.
GAUSSIAN_OPS = (
    "Dgate", "Xgate", "Zgate", "Sgate", "Rgate", "Pgate", "Fouriergate", "BSgate", "MZgate",
    "S2gate", "CXgate", "CZgate", "Interferometer", "GaussianTransform",
    "Vacuum", "Coherent", "Squeezed", "DisplacedSqueezed", "Thermal",
    "LossChannel", "ThermalLossChannel", "PassiveChannel",
)  # fmt: skip
GAUSSIAN_DECOMPOSED = ("GraphEmbed", "BipartiteGraphEmbed")
# Ops whose output state is mixed: the Gaussian engine, which tracks covariances, runs them all.
MIXED_OPS = ("Thermal", "LossChannel", "ThermalLossChannel", "PassiveChannel")
# The channels the compiled engine also runs, exactly (density matrices or quantum-jump
# trajectories, cvgen.engines.noisy); SF's Fock compiler keeps LossChannel and refuses
# ThermalLossChannel, so both pass through the op list as written.
CHANNEL_OPS = ("LossChannel", "ThermalLossChannel")
# sympy function -> numpy's name of the elementwise function (None: an arithmetic operator).
FUNCTIONS = {
    "Add": None,
    "Mul": None,
    "Pow": None,
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "exp": "exp",
    "log": "log",
    "Abs": "abs",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atan2": "arctan2",
    "sign": "sign",
}

# Instances SF exports under a second name, written without arguments (`Vac | 0`).
ALIASES = {"Vac": "Vacuum", "Fourier": "Fouriergate"}
# Every op name a Blackbird script may use with Strawberry Fields 0.23 (its ops.__all__;
# tests/test_fuzz_config.py checks the list against SF).
SF_OP_NAMES = frozenset((
    "All", "BSgate", "BipartiteGraphEmbed", "Bosonic", "CKgate", "CXgate", "CZgate", "Catstate",
    "Coherent", "Del", "DensityMatrix", "Dgate", "DisplacedSqueezed", "Fock", "Fourier",
    "Fouriergate", "GKP", "Gaussian", "GaussianTransform", "GraphEmbed", "Interferometer", "Ket",
    "Kgate", "LossChannel", "MSgate", "MZgate", "MeasureFock", "MeasureHD", "MeasureHeterodyne",
    "MeasureHomodyne", "MeasureP", "MeasureThreshold", "MeasureX", "New", "PassiveChannel",
    "Pgate", "Rgate", "S2gate", "Sgate", "Squeezed", "Thermal", "ThermalLossChannel", "Vac",
    "Vacuum", "Vgate", "Xgate", "Zgate",
))  # fmt: skip


@dataclass(frozen=True)
class Signature:
    """The arguments cvgen accepts for one SF op (a prefix of SF's own), and its modes."""

    wires: int | None  # modes it acts on; None: as many as its matrix has rows (see `modes_of`)
    params: tuple[str, ...] = ()  # argument names, in SF's order
    required: int = 0  # leading arguments without a default
    # "real": real numbers or expressions of free parameters; "matrix": one numeric array
    # literal; "count": one whole-number literal.
    values: str = "real"
    instance: bool = False  # an instance (Vac, Fourier): written without parentheses

    def modes_of(self, name: str, matrix) -> int:
        """Modes a matrix op acts on: U, A are N x N; GaussianTransform's S is 2N x 2N."""
        return matrix.shape[0] // 2 if name == "GaussianTransform" else matrix.shape[0]


# The gates a Blackbird script may apply, with either engine.
GATE_SIGNATURES = {
    "Dgate": Signature(1, ("r", "phi"), 1),
    "Sgate": Signature(1, ("r", "phi"), 1),
    "Vgate": Signature(1, ("gamma",), 1),
    "Rgate": Signature(1, ("theta",), 1),
    "Kgate": Signature(1, ("kappa",), 1),
    "Pgate": Signature(1, ("s",), 1),
    "Xgate": Signature(1, ("x",), 1),
    "Zgate": Signature(1, ("p",), 1),
    "Fouriergate": Signature(1),
    "Fourier": Signature(1, instance=True),
    "BSgate": Signature(2, ("theta", "phi")),
    "MZgate": Signature(2, ("phi_in", "phi_ex"), 2),
    "S2gate": Signature(2, ("r", "phi"), 1),
    "CKgate": Signature(2, ("kappa",), 1),
    "CXgate": Signature(2, ("s",)),
    "CZgate": Signature(2, ("s",)),
    "Interferometer": Signature(None, ("U",), 1, "matrix"),
    "GaussianTransform": Signature(None, ("S",), 1, "matrix"),
    "GraphEmbed": Signature(None, ("A", "mean_photon_per_mode"), 1, "matrix"),
    "BipartiteGraphEmbed": Signature(None, ("A", "mean_photon_per_mode"), 1, "matrix"),
    "Vacuum": Signature(1),  # before any other op on its mode only
    "Vac": Signature(1, instance=True),
}
# State preparations engine sf runs, on a one-mode circuit only: on a subset of several modes
# SF replaces the mode by tracing it out, which leaves the output state mixed.
PREPARATION_SIGNATURES = {
    "Coherent": Signature(1, ("r", "phi")),
    "Squeezed": Signature(1, ("r", "p")),
    "DisplacedSqueezed": Signature(1, ("r_d", "phi_d", "r_s", "phi_s")),
    "Catstate": Signature(1, ("a", "phi", "p")),
    "Fock": Signature(1, ("n",), 0, "count"),
    "Thermal": Signature(1, ("n",)),  # mixed: engine gaussian only
}
# Channels (mixed output states): engine gaussian only.
CHANNEL_SIGNATURES = {
    "LossChannel": Signature(1, ("T",), 1),
    "ThermalLossChannel": Signature(1, ("T", "nbar"), 2),
    "PassiveChannel": Signature(None, ("T",), 1, "matrix"),
}
# Why each other SF op is refused (outputs are computed from one pure output ket per sample).
REFUSED_OPS = {
    "Gaussian": "it prepares a mixed state in general; use Sgates and an Interferometer",
    "DensityMatrix": "it prepares a mixed state",
    "Ket": "its array fixes the cutoff, which the truncation check raises; use gates",
    "GKP": "Strawberry Fields' TF backend cannot prepare it",
    "Bosonic": "only Strawberry Fields' bosonic backend runs it",
    "All": "it is not a gate",
    "New": "it is not a gate",
    "Del": "it is not a gate",
}
REFUSED_OPS.update(
    dict.fromkeys(
        [name for name in SF_OP_NAMES if name.startswith("Measure")],
        "it is a measurement; remove measurements and channels from the script",
    )
)
REFUSED_OPS["MSgate"] = "it is a measurement-based squeezer; use Sgate"

Expr = float | str | list
MATRIX = "Matrix"  # a numeric matrix literal in an op list: ["Matrix", real rows, imaginary rows]


@dataclass(frozen=True)
class Op:
    """One gate: its name (one of NATIVE_GATES), the modes it acts on, its argument trees."""

    name: str
    wires: tuple[int, ...]
    args: tuple[Expr, ...]


def compiled_runs(op: str) -> bool:
    """Whether the compiled engine runs `op` (a Blackbird name), directly or decomposed."""
    op = ALIASES.get(op, op)
    return op in NATIVE_GATES or op in DECOMPOSED or op in SKIPPED or op in CHANNEL_OPS


def check_ops(op_names) -> None:
    """Refuse, before any work, a circuit with an op the compiled engine cannot run."""
    for op in op_names:
        if not compiled_runs(op):
            raise unsupported(op)


def unsupported_function(value) -> str | None:
    """The first function in a gate argument (a number or sympy expression) that the compiled
    engine does not evaluate (see FUNCTIONS), or None."""
    import sympy

    if not isinstance(value, sympy.Basic) or value.is_number or isinstance(value, sympy.Symbol):
        return None
    function = type(value).__name__
    if function not in FUNCTIONS:
        return function
    return next(filter(None, map(unsupported_function, value.args)), None)


def unsupported(op: str) -> CvgenError:
    if op in MIXED_OPS:
        return CvgenError(
            f"op {op} is not supported by engine 'compiled' (it runs the channels "
            f"{', '.join(CHANNEL_OPS)}); use engine: gaussian (exact for Gaussian circuits)"
        )
    return CvgenError(
        f"op {op} is not supported by engine 'compiled' (it runs {', '.join(NATIVE_GATES)}, the "
        f"channels {', '.join(CHANNEL_OPS)} and what SF decomposes into them); use engine: sf "
        f"for this circuit"
    )


def ops_from_gates(gates) -> tuple[Op, ...]:
    """The op list of gates given as (name, args, wires), all of them NATIVE_GATES; omitted
    arguments take SF's defaults."""
    return tuple(Op(name, tuple(wires), _with_defaults(name, args)) for name, args, wires in gates)


def _with_defaults(name: str, args) -> tuple[Expr, ...]:
    defaults = DEFAULTS.get(name, ())
    return tuple(args) + tuple(defaults[len(args) :])


def ops_from_program(program) -> tuple[Op, ...]:
    """The op list of an SF Program, compiled by SF's Fock compiler (which decomposes what is
    not native)."""
    from strawberryfields.compilers import compiler_db

    compiler = compiler_db["fock"]()
    ops: list[Op] = []
    commands = list(program.circuit)
    while commands:  # runs of gates decomposed by SF's Fock compiler, channels kept as written
        run = []
        while commands and type(commands[0].op).__name__ not in CHANNEL_OPS:
            run.append(commands.pop(0))
        for command in compiler.decompose(run) + commands[:1]:
            name = type(command.op).__name__
            if name in SKIPPED:
                continue
            if name not in NATIVE_GATES and name not in CHANNEL_OPS:
                raise unsupported(name)
            ops.append(_command_op(command))
        commands = commands[1:]
    return tuple(ops)


def gaussian_runs(op: str) -> bool:
    """Whether the Gaussian engine runs `op` (a Blackbird name), directly or decomposed."""
    op = ALIASES.get(op, op)
    return op in GAUSSIAN_OPS or op in GAUSSIAN_DECOMPOSED or op == "Vac"


def not_gaussian(op: str) -> CvgenError:
    return CvgenError(
        f"op {op} is not Gaussian, so engine 'gaussian' cannot run it; use engine: compiled "
        f"(or sf), which simulate in the Fock basis, or engine: auto to choose"
    )


def gaussian_ops_from_program(program) -> tuple[Op, ...]:
    """The Gaussian engine's op list of an SF Program: its ops as they are (matrices as
    literals), with GraphEmbed and BipartiteGraphEmbed replaced by SF's own decomposition."""
    ops = []
    commands = list(program.circuit)
    while commands:
        command = commands.pop(0)
        name = type(command.op).__name__
        if name in GAUSSIAN_DECOMPOSED:
            commands[:0] = command.op.decompose(command.reg)
            continue
        if name not in GAUSSIAN_OPS:
            raise not_gaussian(name)
        ops.append(_command_op(command))
    return tuple(ops)


def _command_op(command) -> Op:
    """An SF Command as an Op: its modes and its arguments as expression trees."""
    name = type(command.op).__name__
    wires = tuple(register.ind for register in command.reg)
    return Op(name, wires, tuple(_argument(value, name) for value in command.op.p))


def _argument(value, op: str) -> Expr:
    """A gate argument as an expression tree; a numeric array as a matrix literal."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        matrix = value.astype(np.complex128)
        return [MATRIX, matrix.real.tolist(), matrix.imag.tolist()]
    return _tree(value, op)


def _tree(value, op: str) -> Expr:
    """A sympy expression (or number) as an expression tree of plain JSON values."""
    import sympy

    if not isinstance(value, sympy.Basic):
        return float(value)
    if value.is_number:
        return float(value)
    if isinstance(value, sympy.Symbol):
        return value.name
    function = type(value).__name__
    if function not in FUNCTIONS:
        raise CvgenError(
            f"op {op}: argument {value} uses {function}, which cvgen does not evaluate (it "
            f"evaluates {', '.join(FUNCTIONS)}); rewrite the argument or use engine: sf"
        )
    return [function, *(_tree(argument, op) for argument in value.args)]


def names_in(tree: Expr) -> frozenset[str]:
    """The parameter names an expression tree depends on."""
    if isinstance(tree, str):
        return frozenset([tree])
    if isinstance(tree, list) and tree[0] != MATRIX:
        return frozenset().union(*(names_in(argument) for argument in tree[1:]))
    return frozenset()


def evaluate(tree: Expr, values: dict, xp) -> object:
    """The value of an expression tree given parameter arrays `values`, in namespace `xp`."""
    if isinstance(tree, str):
        return values[tree]
    if not isinstance(tree, list):
        return tree
    function, *arguments = tree
    if function == MATRIX:
        real, imaginary = arguments
        return np.asarray(real) + 1j * np.asarray(imaginary)
    parts = [evaluate(argument, values, xp) for argument in arguments]
    operators: dict[str, Callable] = {"Add": operator.add, "Mul": operator.mul}
    if function in operators:
        return reduce(operators[function], parts)
    if function == "Pow":
        return parts[0] ** parts[1]
    return xp.math(FUNCTIONS[function])(*parts)  # atan2(y, x): same order in sympy, numpy, TF


def ops_json(ops: tuple[Op, ...]) -> str:
    """The op list as JSON text (what params.h5 stores)."""
    return json.dumps([[op.name, list(op.wires), list(op.args)] for op in ops])


def ops_from_json(text: str) -> tuple[Op, ...]:
    """The op list stored by ops_json."""
    return tuple(Op(name, tuple(wires), tuple(args)) for name, wires, args in json.loads(text))

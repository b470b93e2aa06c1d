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

from cvgen.errors import CvgenError

__all__ = [
    "FUNCTIONS",
    "NATIVE_GATES",
    "Op",
    "check_ops",
    "evaluate",
    "names_in",
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
SKIPPED = ("Vacuum",)  # a no-op on the vacuum every run starts from
# Ops SF's Fock compiler decomposes into the gates above.
DECOMPOSED = (
    "Interferometer", "GraphEmbed", "BipartiteGraphEmbed", "GaussianTransform",
    "Pgate", "CXgate", "CZgate", "sMZgate", "Xgate", "Zgate", "Fouriergate",
)  # fmt: skip
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

Expr = float | str | list


@dataclass(frozen=True)
class Op:
    """One gate: its name (one of NATIVE_GATES), the modes it acts on, its argument trees."""

    name: str
    wires: tuple[int, ...]
    args: tuple[Expr, ...]


def check_ops(op_names) -> None:
    """Refuse, before any work, a circuit with an op the compiled engine cannot run."""
    for op in op_names:
        if op not in NATIVE_GATES and op not in DECOMPOSED and op not in SKIPPED:
            raise unsupported(op)


def unsupported(op: str) -> CvgenError:
    return CvgenError(
        f"op {op} is not supported by engine 'compiled' (it runs {', '.join(NATIVE_GATES)} and "
        f"what SF decomposes into them); use engine: sf for this circuit"
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
    ops = []
    for command in program.compile(compiler="fock").circuit:
        name = type(command.op).__name__
        if name in SKIPPED:
            continue
        if name not in NATIVE_GATES:
            raise unsupported(name)
        wires = tuple(register.ind for register in command.reg)
        ops.append(Op(name, wires, tuple(_tree(value, name) for value in command.op.p)))
    return tuple(ops)


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
    if isinstance(tree, list):
        return frozenset().union(*(names_in(argument) for argument in tree[1:]))
    return frozenset()


def evaluate(tree: Expr, values: dict, xp) -> object:
    """The value of an expression tree given parameter arrays `values`, in namespace `xp`."""
    if isinstance(tree, str):
        return values[tree]
    if not isinstance(tree, list):
        return tree
    function, *arguments = tree
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

"""The compiled engine: an SF Program executed as one traced tf.function per batch.

SF's TF backend builds every gate matrix per batch element in a Python loop and cannot be traced.
Here the Program is compiled to SF's Fock primitives once, and each op becomes a step that
  - builds its matrix with vectorised TF ops (cvgen.gates): inside the traced function for
    per-sample parameters, once per circuit for parameters shared by the batch;
  - applies it by structure: diagonal gates (Rgate, Kgate, CKgate) as element-wise phases,
    other gates as a matrix product on a reshaped view of the state (no transposes of the
    whole state for gates on neighbouring modes).
Observables are computed from the ket inside the same traced function.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.engines import padded
from cvgen.errors import CvgenError
from cvgen.observables import HBAR, OUTPUTS, observable_tensors

log = logging.getLogger(__name__)

# SF op -> (matrix builder in cvgen.gates, how it acts: single, diagonal, two, passive (a
# two-mode gate conserving n1 + n2), diagonal2).
GATES = {
    "Dgate": ("displacement", "single"),
    "Sgate": ("squeezing", "single"),
    "Vgate": ("cubic_phase", "single"),
    "Rgate": ("rotation_phases", "diagonal"),
    "Kgate": ("kerr_phases", "diagonal"),
    "BSgate": ("beamsplitter", "passive"),
    "MZgate": ("mach_zehnder", "passive"),
    "S2gate": ("two_mode_squeezing", "two"),
    "CKgate": ("cross_kerr_phases", "diagonal2"),
}
SKIPPED = ("Vacuum",)  # a no-op on the vacuum every run starts from
# Ops SF's Fock compiler decomposes into the gates above.
DECOMPOSED = (
    "Interferometer", "GraphEmbed", "BipartiteGraphEmbed", "GaussianTransform",
    "Pgate", "CXgate", "CZgate", "sMZgate", "Xgate", "Zgate", "Fouriergate",
)  # fmt: skip


def check_ops(op_names) -> None:
    """Refuse, before any work, a circuit with an op the compiled engine cannot run."""
    for op in op_names:
        if op not in GATES and op not in DECOMPOSED and op not in SKIPPED:
            raise _unsupported(op)


def _unsupported(op: str) -> CvgenError:
    return CvgenError(
        f"op {op} is not supported by engine 'compiled' (it runs {', '.join(GATES)} and what "
        f"SF decomposes into them); use engine: sf for this circuit"
    )


@dataclass
class Step:
    """One gate of the compiled circuit."""

    op: str
    wires: tuple[int, ...]
    build: Callable
    action: str
    parameters: list[Callable]  # each maps {name: tensor} to a tensor
    names: frozenset[str]  # free parameters it depends on
    shared: bool  # depends on per-circuit parameters and constants only


class CompiledEngine:
    """Runs a circuit in batches of `batch_size` as one traced tf.function.

    `shared_names` are the parameters that are constant across a circuit (per_circuit): gates
    depending only on them are built once per circuit and reused for every batch.
    """

    name = "compiled"

    def _compile(self, circuit: CircuitSpec, batch_size: int, shared_names, outputs) -> None:
        """What every truncation shares: the steps, which parameters they take, the dtype."""
        import tensorflow as tf

        self.circuit = circuit
        self.batch_size = batch_size
        self.dtype = getattr(tf, circuit.dtype)
        self.outputs = tuple(outputs)
        self.shared_names = tuple(shared_names)
        self.steps = compile_steps(circuit, set(shared_names))
        self.sample_names = tuple(
            sorted(set().union(*(s.names for s in self.steps)) - set(shared_names))
        )
        self._shared_key = None
        self._shared_matrices = None

    def _trace(self) -> None:
        """The traced functions: one batch, and the per-circuit gates (shapes: _shared_shapes)."""
        import tensorflow as tf

        real = self.dtype.real_dtype
        self._run_batch = tf.function(
            self._batch,
            autograph=False,
            input_signature=[
                tf.TensorSpec([self.batch_size, len(self.sample_names)], real),
                tf.TensorSpec([len(self.shared_names)], real),
                [tf.TensorSpec(shape, self.dtype) for shape in self._shared_shapes()],
            ],
        )
        self._build_shared = tf.function(
            self._shared,
            autograph=False,
            input_signature=[tf.TensorSpec([len(self.shared_names)], real)],
        )

    def _shared_shapes(self) -> list[list[int]]:
        """Shapes of the per-circuit gate matrices `_shared` builds, in step order."""
        return [_matrix_shape(s.action, self.circuit.cutoff) for s in self.steps if s.shared]

    def __init__(self, circuit: CircuitSpec, batch_size: int, shared_names=(), outputs=OUTPUTS):
        self._compile(circuit, batch_size, shared_names, outputs)
        self._trace()
        cutoff, modes = circuit.cutoff, circuit.modes
        log.info(
            "compiled engine: %d steps (%d built once per circuit), %d modes, cutoff %d, batch %d",
            len(self.steps),
            sum(s.shared for s in self.steps),
            modes,
            cutoff,
            batch_size,
        )

    def kets(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] for `count` samples."""
        import tensorflow as tf

        return tf.concat([ket for ket, _ in self._runs(args, count)], axis=0)

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """The engine's outputs for `count` samples, computed inside the traced function."""
        return self.evaluate(args, count)[1]

    def evaluate(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] and the outputs as numpy arrays, from one set of runs."""
        import tensorflow as tf

        kets, results = zip(*self._runs(args, count), strict=True)
        outputs = {n: np.concatenate([r[n].numpy() for r in results]) for n in self.outputs}
        return tf.concat(kets, axis=0), outputs

    def _runs(self, args: dict[str, np.ndarray], count: int):
        """Run the samples in groups sharing one circuit (a batch may straddle two circuits)."""
        shared = np.stack([args[n][:count] for n in self.shared_names] or [np.zeros(count)], 1)
        changes = np.flatnonzero(np.any(shared[1:] != shared[:-1], axis=1)) + 1
        bounds = [0, *changes.tolist(), count]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            yield self._run(args, start, stop, shared[start, : len(self.shared_names)])

    def _run(self, args, start: int, stop: int, shared_values: np.ndarray):
        import tensorflow as tf

        key = shared_values.tobytes()
        if key != self._shared_key:
            real = self.dtype.real_dtype
            self._shared_matrices = self._build_shared(tf.constant(shared_values, real))
            self._shared_key = key
        count = stop - start
        columns = [padded(args[n][start:stop], self.batch_size) for n in self.sample_names]
        values = np.stack(columns, axis=1) if columns else np.zeros((self.batch_size, 0))
        ket, outputs = self._run_batch(
            tf.constant(values, self.dtype.real_dtype),
            tf.constant(shared_values, self.dtype.real_dtype),
            list(self._shared_matrices),
        )
        return ket[:count], {name: value[:count] for name, value in outputs.items()}

    def _shared(self, shared_values):
        """Matrices of the gates that depend only on per-circuit parameters (leading axis 1)."""
        values = {n: shared_values[j : j + 1] for j, n in enumerate(self.shared_names)}
        return [self._matrix(step, values, 1) for step in self.steps if step.shared]

    def _batch(self, sample_values, shared_values, shared_matrices):
        """One batch: vacuum, every gate, observables. Traced once per engine."""
        import tensorflow as tf

        batch, cutoff, modes = self.batch_size, self.circuit.cutoff, self.circuit.modes
        values = {n: sample_values[:, j] for j, n in enumerate(self.sample_names)}
        values.update(
            {n: tf.fill([batch], shared_values[j]) for j, n in enumerate(self.shared_names)}
        )
        state = tf.reshape(
            tf.one_hot(tf.zeros([batch], tf.int32), cutoff**modes, dtype=self.dtype),
            [batch] + [cutoff] * modes,
        )
        shared = iter(shared_matrices)
        for step in self.steps:
            matrix = next(shared) if step.shared else self._matrix(step, values, batch)
            state = apply(state, matrix, step.action, step.wires, step.shared)
        return state, observable_tensors(state, self.outputs)

    def _matrix(self, step: Step, values: dict, size: int):
        """The gate's matrix (or phases) with a leading axis of `size` parameter values."""
        import tensorflow as tf

        real = self.dtype.real_dtype
        parameters = []
        for parameter in step.parameters:
            value = parameter(values)
            value = tf.cast(value, real) if tf.is_tensor(value) else tf.constant(value, real)
            parameters.append(tf.broadcast_to(value, [size]))
        return step.build(*parameters, self.circuit.cutoff, self.dtype)


def compile_steps(circuit: CircuitSpec, shared_names: set[str]) -> list[Step]:
    """The circuit's ops, compiled to SF's Fock primitives, as engine steps."""
    from cvgen import gates

    program = circuit.build_program().compile(compiler="fock")
    steps = []
    for command in program.circuit:
        op = type(command.op).__name__
        if op in SKIPPED:
            continue
        if op not in GATES:
            raise _unsupported(op)
        builder, action = GATES[op]
        build = getattr(gates, builder)
        if op == "Vgate":
            build = functools.partial(build, hbar=HBAR)
        parameters, names = zip(*(_parameter(p) for p in command.op.p), strict=True)
        depends = frozenset().union(*names)
        steps.append(
            Step(
                op=op,
                wires=tuple(r.ind for r in command.reg),
                build=build,
                action=action,
                parameters=list(parameters),
                names=depends,
                shared=depends <= shared_names,
            )
        )
    return steps


def _parameter(value) -> tuple[Callable, frozenset[str]]:
    """A function of the named parameter values, and the names it depends on."""
    import sympy
    from strawberryfields.parameters import FreeParameter

    if not isinstance(value, sympy.Basic):
        number = float(value)
        return (lambda values: number), frozenset()
    atoms = sorted(value.atoms(FreeParameter), key=lambda atom: atom.name)
    if not atoms:
        number = float(value)
        return (lambda values: number), frozenset()
    function = sympy.lambdify(atoms, value, "tensorflow")
    names = [atom.name for atom in atoms]
    return (lambda values: function(*(values[n] for n in names))), frozenset(names)


def _matrix_shape(action: str, cutoff: int) -> list[int]:
    """Shape of a shared gate's matrix (leading axis 1)."""
    return {
        "single": [1, cutoff, cutoff],
        "diagonal": [1, cutoff],
        "two": [1] + [cutoff] * 4,
        "passive": [1] + [cutoff] * 4,
        "diagonal2": [1, cutoff, cutoff],
    }[action]


def apply(state, matrix, action: str, wires: tuple[int, ...], shared: bool):
    """Apply a gate's matrix (leading axis 1 if shared, else the batch) to the state [B, D, ...]."""
    import tensorflow as tf

    shape = state.shape
    batch, cutoff, modes = shape[0], shape[1], shape.rank - 1
    leading = 1 if shared else batch
    if action == "diagonal":
        (mode,) = wires
        broadcast = [leading] + [1] * modes
        broadcast[mode + 1] = cutoff
        return state * tf.reshape(matrix, broadcast)
    if action == "diagonal2":
        first, second = wires
        if first > second:
            matrix, first, second = tf.transpose(matrix, [0, 2, 1]), second, first
        broadcast = [leading] + [1] * modes
        broadcast[first + 1] = broadcast[second + 1] = cutoff
        return state * tf.reshape(matrix, broadcast)
    if action == "single":
        return _apply_dense(state, matrix, wires[0], 1, shared)
    first, second = wires
    if first > second:  # the gate's first mode must be the lower axis
        matrix, first, second = tf.transpose(matrix, [0, 2, 1, 4, 3]), second, first
    apply_pair = _apply_passive if action == "passive" else _apply_two_dense
    if second == first + 1:
        return apply_pair(state, matrix, first, shared)
    # Not neighbours: bring the second mode next to the first, apply, move it back.
    order = list(range(modes + 1))
    order.insert(first + 2, order.pop(second + 1))
    moved = apply_pair(tf.transpose(state, order), matrix, first, shared)
    return tf.transpose(moved, np.argsort(order))


def _apply_two_dense(state, matrix, mode: int, shared: bool):
    """A two-mode gate [K, m1, m2, n1, n2] on modes (mode, mode + 1) as one dense matrix."""
    import tensorflow as tf

    cutoff = state.shape[1]
    flat = tf.reshape(matrix, [-1, cutoff * cutoff, cutoff * cutoff])
    return _apply_dense(state, flat, mode, 2, shared)


def _apply_passive(state, matrix, mode: int, shared: bool):
    """A gate conserving n1 + n2 on modes (mode, mode + 1), one block per photon-number sector.

    Sector N holds the pairs (k, N - k): at most D of them, so the gate is 2D - 1 blocks of
    D x D instead of one D^2 x D^2 matrix, ~D/2 times fewer multiplications. The pairs are
    gathered into sectors, multiplied block by block, and scattered back. Where the two modes
    are the last axes one dense product is faster (a single large GEMM), so that stays dense.
    """
    import tensorflow as tf

    shape = state.shape
    batch, cutoff, modes = shape[0], shape[1], shape.rank - 1
    after = cutoff ** (modes - mode - 2)
    if after == 1:
        return _apply_two_dense(state, matrix, mode, shared)
    sectors, scatter = _sector_tables(cutoff)
    blocks = _sector_blocks(matrix, sectors)  # [K, 2D-1, D, D]
    rows = batch * cutoff**mode
    padded = tf.pad(tf.reshape(state, [rows, cutoff * cutoff, after]), [[0, 0], [0, 1], [0, 0]])
    if shared:  # sectors leading: one batched product over all rows at once
        gathered = tf.gather(tf.transpose(padded, [1, 0, 2]), sectors, axis=0)
        out = blocks[0] @ tf.reshape(gathered, [2 * cutoff - 1, cutoff, rows * after])
        out = tf.reshape(out, [(2 * cutoff - 1) * cutoff, rows, after])
        return tf.reshape(tf.transpose(tf.gather(out, scatter, axis=0), [1, 0, 2]), shape)
    gathered = tf.gather(
        tf.reshape(padded, [batch, -1, cutoff * cutoff + 1, after]), sectors, axis=2
    )
    out = blocks[:, None] @ gathered  # [B, P, 2D-1, D, after]
    out = tf.reshape(out, [batch, -1, (2 * cutoff - 1) * cutoff, after])
    return tf.reshape(tf.gather(out, scatter, axis=2), shape)


def _sector_tables(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pair indices k * D + (N - k) of each sector N, padded with D^2 (a zero row), and
    for every pair its position in the flattened [2D - 1, D] sector layout."""
    sectors = np.full((2 * cutoff - 1, cutoff), cutoff * cutoff)
    scatter = np.zeros(cutoff * cutoff, dtype=np.int64)
    for total in range(2 * cutoff - 1):
        pairs = [k for k in range(cutoff) if 0 <= total - k < cutoff]
        for slot, k in enumerate(pairs):
            sectors[total, slot] = k * cutoff + total - k
            scatter[k * cutoff + total - k] = total * cutoff + slot
    return sectors, scatter


def _sector_blocks(matrix, sectors: np.ndarray):
    """The [K, 2D-1, D, D] blocks of a number-conserving gate [K, m1, m2, n1, n2]."""
    import tensorflow as tf

    size = sectors.max() + 1  # D^2 + 1, the last row and column zero
    flat = tf.reshape(matrix, [-1, size - 1, size - 1])
    flat = tf.reshape(tf.pad(flat, [[0, 0], [0, 1], [0, 1]]), [-1, size * size])
    index = sectors[:, :, None] * size + sectors[:, None, :]
    return tf.gather(flat, index, axis=1)


def _apply_dense(state, matrix, mode: int, width: int, shared: bool):
    """Contract a [K, D^w, D^w] matrix with `width` neighbouring modes starting at `mode`."""
    import tensorflow as tf

    shape = state.shape
    batch, cutoff, modes = shape[0], shape[1], shape.rank - 1
    before = cutoff**mode
    size = cutoff**width
    after = cutoff ** (modes - mode - width)
    if after == 1:  # the gate's modes are last: one matrix product over all other indices
        rows = tf.reshape(state, [batch, before, size])
        out = rows @ tf.linalg.matrix_transpose(matrix if not shared else matrix[0])
    else:
        view = tf.reshape(state, [batch, before, size, after])
        out = (matrix[0] if shared else matrix[:, None]) @ view
    return tf.reshape(out, shape)

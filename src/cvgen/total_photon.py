"""Total-photon-number truncation for the compiled engine.

Per-mode truncation keeps the basis states |n_1 .. n_M> with every n_m < D. Total truncation
keeps those with n_1 + ... + n_M < N (the circuit's `cutoff` is read as N here): a state's
amplitude spreads over photon-number shells, not over a box, so for the same number of states
it is far more accurate when M > 1 (on the QNN template, see tests/test_total_photon.py). This
engine keeps exactly those C(N + M - 1, M) states as a compact vector and applies each gate U
as P U P, P the projector onto the kept states and U the exact per-mode matrix at cutoff N:

  - single-mode gates act, for each configuration of the other modes with s photons, on the
    N - s states of their mode: the top-left (N - s) x (N - s) block of U;
  - passive two-mode gates (BSgate, MZgate) conserve n1 + n2: one block per sector;
  - S2gate conserves n1 - n2: one block per difference, cut where n1 + n2 reaches N - s;
  - diagonal gates (Rgate, Kgate, CKgate) are phases.

Each block is a prefix of a "chain" of the gate's local Fock states, so blocks of one chain
share the chain's matrix. Blocks are padded into buckets of equal size and every bucket is one
batched matrix product. A bucket per block size wastes nothing on padding but costs one op
dispatch per size, so neighbouring sizes are merged where a small cost model (below) says the
padding is cheaper than the dispatch: measured with one TF thread, this runs the 2-mode QNN
(N = 14) 1.7-2.3x and the 3-mode one (N = 12-14) 1.15-1.5x faster than a bucket per size, and
the 4-mode one (N = 17) as fast. The state is held batch-minor ([positions, batch]) in the layout
of the last gate's buckets, so moving from one gate's layout to the next is a single gather of
whole rows (index tables built once in numpy). Everything else (per-circuit gates built once,
batches split where the circuit changes, the traced tf.function) is the compiled engine's.

Outputs keep the per-mode conventions at cutoff N, so everything downstream works unchanged:
kets are returned embedded in the per-mode box [count, N, ..., N] (zero outside the kept
states), `fock_probs` has the box's N^M layout (zeros outside the kept states), and <x>, <p>,
<n>, norm are those of the kept (truncated, not renormalised) state, hbar = 2.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.compiled import CompiledEngine, Step
from cvgen.observables import HBAR, OUTPUTS

log = logging.getLogger(__name__)

# Cost model of a bucket, in complex multiply-adds per sample: chains x width x size x
# (size + GATHER_COST) for its product and gathers, plus BUCKET_COST_SECONDS of fixed cost per
# bucket (its ops' dispatch), converted at MULTIPLY_ADD_SECONDS per multiply-add and sample.
# Rough: with one TF thread, 30 us per bucket ran the 2- to 4-mode QNN within 15% of the
# fastest of 10, 30 and 100 us.
GATHER_COST = 4
BUCKET_COST_SECONDS = 30e-6
MULTIPLY_ADD_SECONDS = 1e-9


def basis_size(modes: int, n_total: int) -> int:
    """Number of Fock states of `modes` modes with fewer than `n_total` photons in total."""
    return math.comb(n_total + modes - 1, modes)


def basis_states(modes: int, n_total: int) -> np.ndarray:
    """The kept states as [basis_size, modes] photon numbers, in lexicographic order.

    Lexicographic order is the order of their flat index in the per-mode box of cutoff
    `n_total`, so a state's position is a binary search away (`index_of`).
    """
    states = np.zeros((1, 0), dtype=np.int64)
    for _ in range(modes):
        room = n_total - states.sum(axis=1)  # photons the next mode may still take
        starts = np.cumsum(room) - room
        last = np.arange(room.sum()) - np.repeat(starts, room)
        states = np.column_stack([np.repeat(states, room, axis=0), last])
    return states


def box_index(states: np.ndarray, n_total: int) -> np.ndarray:
    """Flat index of each state in the per-mode box [n_total] * modes."""
    modes = states.shape[1]
    return states @ (n_total ** np.arange(modes - 1, -1, -1, dtype=np.int64))


def index_of(states: np.ndarray, basis: np.ndarray, n_total: int) -> np.ndarray:
    """Position in `basis` of each of `states` (all of which must be kept states)."""
    return np.searchsorted(box_index(basis, n_total), box_index(states, n_total))


@functools.lru_cache(maxsize=64)
def layout_sizes(modes: int, n_total: int, batch_size: int) -> tuple[int, int]:
    """Per sample: the rows of the largest padded layout any gate uses (the state the engine
    holds, plus its zero row), and the elements of the largest gate's blocks (what a gate
    built per sample holds).

    Independent of the circuit (every mode and pair of modes has the same structure) and of
    Strawberry Fields, so a memory estimate can call it without building the Program.
    """
    basis = basis_states(modes, n_total)
    kinds = [("single", (0,))] + ([("passive", (0, 1)), ("two", (0, 1))] if modes > 1 else [])
    rows, blocks = 0, 0
    for kind, wires in kinds:
        buckets = _buckets(kind, wires, basis, n_total, batch_size)
        rows = max(rows, sum(b.members.size for b in buckets) + 1)
        blocks = max(blocks, sum(b.blocks.size for b in buckets))
    return rows, blocks


@dataclass(frozen=True)
class Bucket:
    """Chains of one gate padded to one size and applied as one (batched) matrix product.

    `members[c, i, w]`: the basis state at position i of the w-th member of chain c (-1:
    padding); `blocks[c, i, j]`: flat index of the chain's matrix element (i, j) in the gate's
    matrix (its size: padding, read as zero).
    """

    members: np.ndarray  # [chains, size, width]
    blocks: np.ndarray  # [chains, size, size]


@dataclass(frozen=True)
class Plan:
    """How one step moves the state: row indices into the previous layout, per bucket, or the
    flat phase index of every row of the current layout for a diagonal gate."""

    step: Step
    buckets: list[Bucket]
    gathers: list[np.ndarray]
    phase_index: np.ndarray | None


class TotalPhotonEngine(CompiledEngine):
    """The compiled engine with total-photon truncation: states with fewer than `cutoff` photons.

    Same interface as CompiledEngine (`name` is "compiled"; `truncation` tells the two apart).
    `kets` and `evaluate` return the kets embedded in the per-mode box [count, N, ..., N], zero
    outside the kept states, and `fock_probs` has the box's N^M layout, zeros outside the kept
    states, so downstream code written for per-mode kets (sampling, datasets) works unchanged.
    `observables` computes every output on the compact state and embeds nothing else.
    """

    truncation = "total"

    def __init__(self, circuit: CircuitSpec, batch_size: int, shared_names=(), outputs=OUTPUTS):

        self._compile(circuit, batch_size, shared_names, outputs)
        n_total, modes = circuit.cutoff, circuit.modes
        self.basis = basis_states(modes, n_total)
        self.plans, self._compact_rows = _plan_steps(self.steps, self.basis, n_total, batch_size)
        # For every state of the box, its position in the compact basis (len(basis) if dropped).
        self._compact_of_box = np.full(n_total**modes, len(self.basis))
        self._compact_of_box[box_index(self.basis, n_total)] = np.arange(len(self.basis))
        self._trace()
        log.info(
            "compiled engine, total truncation: %d steps (%d built once per circuit), %d modes, "
            "fewer than %d photons (%d states, largest padded layout %d), batch %d",
            len(self.steps),
            sum(s.shared for s in self.steps),
            modes,
            n_total,
            len(self.basis),
            max((sum(len(rows) for rows in plan.gathers) for plan in self.plans), default=0),
            batch_size,
        )

    def kets(self, args: dict[str, np.ndarray], count: int):
        """Output kets embedded in the per-mode box, [count, N, ..., N], zero outside."""
        return self.embed(super().kets(args, count))

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """The engine's outputs for `count` samples (no kets embedded)."""
        return super().evaluate(args, count)[1]

    def evaluate(self, args: dict[str, np.ndarray], count: int):
        """Output kets embedded in the per-mode box and the outputs, from one set of runs."""
        compact, outputs = super().evaluate(args, count)
        return self.embed(compact), outputs

    def embed(self, compact):
        """Compact states [count, basis_size] as per-mode kets [count, N, ..., N]."""
        import tensorflow as tf

        box = self._to_box(compact)
        return tf.reshape(box, [-1] + [self.circuit.cutoff] * self.circuit.modes)

    def _to_box(self, compact):
        """Rows [count, basis_size] spread over the flat per-mode box [count, N^M], zero-filled."""
        import tensorflow as tf

        padded = tf.pad(compact, [[0, 0], [0, 1]])
        return tf.gather(padded, self._compact_of_box, axis=1)

    def _shared_shapes(self) -> list[list[int]]:
        """Shapes of the tensors `_shared` builds: a bucket's blocks, or a diagonal's phases."""
        shapes = []
        for plan in self.plans:
            if plan.step.shared and plan.buckets:
                shapes += [list(bucket.blocks.shape) for bucket in plan.buckets]
            elif plan.step.shared:
                shapes.append([len(plan.phase_index), 1])
        return shapes

    def _shared(self, shared_values):
        """Blocks and phases of the gates that depend only on per-circuit parameters."""
        values = {n: shared_values[j : j + 1] for j, n in enumerate(self.shared_names)}
        tensors = []
        for plan in self.plans:
            if plan.step.shared:
                tensors += self._gate_tensors(plan, self._matrix(plan.step, values, 1))
        return tensors

    def _gate_tensors(self, plan: Plan, matrix) -> list:
        """Per bucket, the blocks [K, chains, size, size]; for a diagonal gate, its phase per
        layout row [rows, K]. K = 1 (shared, leading axis dropped for blocks) or the batch."""
        import tensorflow as tf

        size = matrix.shape[0]
        flat = tf.pad(tf.reshape(matrix, [size, -1]), [[0, 0], [0, 1]])  # a zero at the end
        if not plan.buckets:
            return [tf.transpose(tf.gather(flat, plan.phase_index, axis=1))]
        blocks = [tf.gather(flat, bucket.blocks, axis=1) for bucket in plan.buckets]
        return [b[0] for b in blocks] if plan.step.shared else blocks

    def _batch(self, sample_values, shared_values, shared_tensors):
        """One batch: vacuum, every gate, observables. Traced once per engine."""
        import tensorflow as tf

        batch = self.batch_size
        values = {n: sample_values[:, j] for j, n in enumerate(self.sample_names)}
        values.update(
            {n: tf.fill([batch], shared_values[j]) for j, n in enumerate(self.shared_names)}
        )
        # Rows: the compact basis, then one zero row that padding slots gather.
        state = tf.one_hot([0], len(self.basis) + 1, axis=0, dtype=self.dtype)
        state = tf.tile(state, [1, batch])
        zero_row = tf.zeros([1, batch], self.dtype)
        shared = iter(shared_tensors)
        for plan in self.plans:
            if plan.step.shared:
                tensors = [next(shared) for _ in plan.buckets or [None]]
            else:
                tensors = self._gate_tensors(plan, self._matrix(plan.step, values, batch))
            if not plan.buckets:
                state = state * tensors[0]
                continue
            outputs = [
                _apply_bucket(tf.gather(state, rows), blocks, bucket, plan.step.shared)
                for bucket, rows, blocks in zip(plan.buckets, plan.gathers, tensors, strict=True)
            ]
            state = tf.concat(outputs + [zero_row], axis=0)
        compact = tf.gather(state, self._compact_rows)  # [basis_size, batch]
        return tf.transpose(compact), self._observables(compact)

    def _observables(self, compact) -> dict:
        """The outputs of cvgen.observables, computed on the compact batch-minor state."""
        import tensorflow as tf

        real = self.dtype.real_dtype
        n_total = self.circuit.cutoff
        probs = tf.math.real(compact * tf.math.conj(compact))
        result = {"norm": tf.reduce_sum(probs, axis=0)}
        if "quad_x" in self.outputs or "quad_p" in self.outputs:
            lowered, sqrt_n = _lowering_tables(self.basis, n_total)
            padded = tf.pad(compact, [[0, 1], [0, 0]])
            terms = tf.math.conj(tf.gather(padded, lowered)) * compact[None]
            lowering = tf.reduce_sum(terms * tf.constant(sqrt_n[..., None], self.dtype), axis=1)
            scale = np.sqrt(2 * HBAR)
            result["quad_x"] = scale * tf.transpose(tf.math.real(lowering))
            result["quad_p"] = scale * tf.transpose(tf.math.imag(lowering))
        if "mean_photon" in self.outputs:
            photons = tf.constant(self.basis.T, real)  # [modes, basis_size]
            result["mean_photon"] = tf.transpose(photons @ probs)
        if "fock_probs" in self.outputs:
            result["fock_probs"] = self._to_box(tf.transpose(probs))
        return {name: result[name] for name in self.outputs}


def _apply_bucket(rows, blocks, bucket: Bucket, shared: bool):
    """Multiply gathered rows [chains * size * width, B] by the bucket's blocks.

    Shared blocks [chains, size, size] act on [chains, size, width * B]: one product per chain
    over every member and sample at once. Per-sample blocks [B, chains, size, size] need the
    batch leading, so the rows are transposed there and back.
    """
    import tensorflow as tf

    chains, size, width = bucket.members.shape
    batch = rows.shape[1]
    if shared:
        view = tf.reshape(rows, [chains, size, width * batch])
        out = blocks[0] @ view[0] if chains == 1 else blocks @ view
    else:
        view = tf.transpose(tf.reshape(rows, [chains, size, width, batch]), [3, 0, 1, 2])
        out = tf.transpose(blocks @ view, [1, 2, 3, 0])
    return tf.reshape(out, [-1, batch])


def _lowering_tables(basis: np.ndarray, n_total: int) -> tuple[np.ndarray, np.ndarray]:
    """For every mode m and kept state n: the index of n - e_m (len(basis), a zero row, where
    n_m = 0) and sqrt(n_m), so <a_m> = sum_n conj(psi(n - e_m)) sqrt(n_m) psi(n)."""
    modes = basis.shape[1]
    lowered = np.full((modes, len(basis)), len(basis))
    for mode in range(modes):
        occupied = basis[:, mode] > 0
        below = basis[occupied].copy()
        below[:, mode] -= 1
        lowered[mode, occupied] = index_of(below, basis, n_total)
    return lowered, np.sqrt(basis.T)


def _plan_steps(steps: list[Step], basis: np.ndarray, n_total: int, batch_size: int):
    """Every step's plan, chaining layouts: each gather reads the previous step's rows.

    Returns the plans and the rows of the final layout holding the compact basis in order.
    """
    row_of = np.arange(len(basis))  # the row of each basis state in the current layout
    state_at = np.arange(len(basis) + 1)  # the basis state at each row (-1: none)
    state_at[-1] = -1
    plans = []
    for step in steps:
        zero_row = len(state_at) - 1
        if step.action in ("diagonal", "diagonal2"):
            local = basis[np.maximum(state_at, 0)][:, list(step.wires)]
            phase_index = local @ (n_total ** np.arange(len(step.wires) - 1, -1, -1))
            plans.append(Plan(step, [], [], phase_index))
            continue
        buckets = _buckets(step.action, step.wires, basis, n_total, batch_size)
        gathers = [
            np.where(b.members >= 0, row_of[b.members], zero_row).reshape(-1) for b in buckets
        ]
        plans.append(Plan(step, buckets, gathers, None))
        state_at = np.concatenate([b.members.reshape(-1) for b in buckets] + [[-1]])
        kept = state_at >= 0
        row_of = np.empty(len(basis), dtype=np.int64)
        row_of[state_at[kept]] = np.flatnonzero(kept)
    return plans, row_of


def _chains(action: str, wires: tuple[int, ...], basis: np.ndarray, n_total: int):
    """Every basis state's chain, position on it, kept prefix length, and member key.

    A member is one configuration of the other modes on one chain: the kept states of a member
    are the first `kept` positions of its chain. Also returns each chain's local Fock states
    as a function (chain ids, positions) -> flat index into the gate's local space, and each
    chain's full length.
    """
    others = [m for m in range(basis.shape[1]) if m not in wires]
    member = box_index(basis[:, others], n_total) if others else np.zeros(len(basis), np.int64)
    room = n_total - basis[:, others].sum(axis=1)  # photons the gate's modes may hold, plus 1
    if action == "single":
        n = basis[:, wires[0]]
        chain, position, kept = np.zeros_like(n), n, room
        return chain, position, kept, member, (lambda c, p: p), (lambda c: np.full_like(c, n_total))
    n1, n2 = basis[:, wires[0]], basis[:, wires[1]]
    if action == "passive":  # sectors n1 + n2 = k, positions n1
        chain, position = n1 + n2, n1
        return (
            chain,
            position,
            chain + 1,
            member,
            (lambda c, p: p * n_total + c - p),
            (lambda c: c + 1),
        )
    # "two" (S2gate): chains of constant n1 - n2 (offset to be >= 0), positions min(n1, n2)
    difference = n1 - n2
    chain, position = difference + n_total - 1, np.minimum(n1, n2)
    kept = (room - 1 - np.abs(difference)) // 2 + 1

    def local(c, p):
        d = c - (n_total - 1)
        return (p + np.maximum(d, 0)) * n_total + p + np.maximum(-d, 0)

    return (
        chain,
        position,
        kept,
        member,
        local,
        lambda c: (n_total - 1 - np.abs(c - n_total + 1)) // 2 + 1,
    )


def _buckets(action: str, wires, basis: np.ndarray, n_total: int, batch_size: int) -> list[Bucket]:
    """The gate's chains grouped into padded buckets that minimise the cost model."""
    chain, position, kept, member, local, length = _chains(action, wires, basis, n_total)
    # Groups: members of one chain with one kept length (all states of a member share both).
    groups, group = np.unique(np.column_stack([kept, chain]), axis=0, return_inverse=True)
    group = group.reshape(-1)
    counts = np.bincount(group[position == 0], minlength=len(groups))  # one head per member
    ranges = _partition(groups[:, 0], groups[:, 1], counts, batch_size)
    local_size = n_total ** len(wires)
    buckets = []
    for first, last in ranges:
        inside = (group >= first) & (group <= last)
        size = int(groups[last, 0])
        chains, chain_rank = np.unique(chain[inside], return_inverse=True)
        member_rank = _rank_within(chain_rank, member[inside])
        members = np.full((len(chains), size, member_rank.max() + 1), -1)
        members[chain_rank, position[inside], member_rank] = np.flatnonzero(inside)
        c = chains[:, None]
        p = np.arange(size)[None, :]
        inside_chain = p < length(c)
        row = np.where(inside_chain, local(c, p), -1)  # [chains, size]
        valid = inside_chain[:, :, None] & inside_chain[:, None, :]
        blocks = np.where(valid, row[:, :, None] * local_size + row[:, None, :], local_size**2)
        buckets.append(Bucket(members=members, blocks=blocks))
    return buckets


def _partition(sizes, chains, counts, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous ranges of groups (sorted by size) into buckets, by dynamic programming.

    A bucket pads every member to its largest size and every chain to its most members.
    """
    fixed = BUCKET_COST_SECONDS / (MULTIPLY_ADD_SECONDS * batch_size)
    best = [0.0] + [math.inf] * len(sizes)
    start = [0] * (len(sizes) + 1)
    for stop in range(1, len(sizes) + 1):
        size = int(sizes[stop - 1])
        members: dict[int, int] = {}
        for first in range(stop - 1, -1, -1):
            members[chains[first]] = members.get(chains[first], 0) + int(counts[first])
            width = max(members.values())
            cost = best[first] + len(members) * width * size * (size + GATHER_COST) + fixed
            if cost < best[stop]:
                best[stop], start[stop] = cost, first
    ranges = []
    stop = len(sizes)
    while stop:
        ranges.append((start[stop], stop - 1))
        stop = start[stop]
    return ranges[::-1]


def _rank_within(groups: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For every element, the rank of its key among the distinct keys of its group."""
    order = np.lexsort((keys, groups))
    g, k = groups[order], keys[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_key = new_group | np.r_[True, k[1:] != k[:-1]]
    key_id = np.cumsum(new_key) - 1
    group_first = np.maximum.accumulate(np.where(new_group, key_id, 0))
    rank = np.empty_like(key_id)
    rank[order] = key_id - group_first
    return rank

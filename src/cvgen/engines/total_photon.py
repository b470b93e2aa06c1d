"""Total-photon-number truncation: a strategy of the compiled engine.

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
  - diagonal gates (Rgate, Kgate, CKgate) are phases;
  - a quantum-jump trajectory's drawn Kraus operator (a shift of one mode's photon number,
    cvgen.engines.channels.Jump) is one gather of each kept state's source.

Each block is a prefix of a "chain" of the gate's local Fock states, so blocks of one chain
share the chain's matrix. Blocks are padded into buckets of equal size and every bucket is one
batched matrix product. A bucket per block size wastes nothing on padding but costs one op
dispatch per size, so neighbouring sizes are merged where a small cost model (below) says the
padding is cheaper than the dispatch: measured with one TF thread, this runs the 2-mode QNN
(N = 14) 1.7-2.3x and the 3-mode one (N = 12-14) 1.15-1.5x faster than a bucket per size, and
the 4-mode one (N = 17) as fast. The state is held batch-minor ([positions, batch]) in the layout
of the last gate's buckets, so moving from one gate's layout to the next is a single gather of
whole rows (index tables built once in numpy). Everything else (per-circuit gates built once,
batches split where the circuit changes, the backend) is the compiled engine's
(cvgen.engines.compiled).

Outputs keep the per-mode conventions at cutoff N, so everything downstream works unchanged:
kets are returned embedded in the per-mode box [count, N, ..., N] (zero outside the kept
states), `fock_probs` has the box's N^M layout (zeros outside the kept states), and <x>, <p>,
<n>, norm are those of the kept (truncated, not renormalised) state, hbar = 2.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from cvgen.conventions import HBAR, real_dtype
from cvgen.engines.channels import KRAUS
from cvgen.sizes import total_photon_basis_size as basis_size

__all__ = [
    "TotalPhotonTruncation",
    "basis_size",
    "basis_states",
    "box_index",
    "box_positions",
    "index_of",
    "kept_state_outputs",
    "layout_sizes",
    "lowering_tables",
    "shift_sources",
    "to_box",
]

# Cost model of a bucket, in complex multiply-adds per sample: chains x width x size x
# (size + GATHER_COST) for its product and gathers, plus BUCKET_COST_SECONDS of fixed cost per
# bucket (its ops' dispatch), converted at MULTIPLY_ADD_SECONDS per multiply-add and sample.
# Rough: with one TF thread, 30 us per bucket ran the 2- to 4-mode QNN within 15% of the
# fastest of 10, 30 and 100 us.
GATHER_COST = 4
BUCKET_COST_SECONDS = 30e-6
MULTIPLY_ADD_SECONDS = 1e-9


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


def box_positions(basis: np.ndarray, n_total: int) -> np.ndarray:
    """For every state of the flat per-mode box [n_total]^M, its position in `basis`
    (len(basis) where the box state is not kept): what `to_box` gathers with."""
    positions = np.full(n_total ** basis.shape[1], len(basis))
    positions[box_index(basis, n_total)] = np.arange(len(basis))
    return positions


def to_box(xp, compact, positions: np.ndarray, axis: int):
    """`compact`, indexed by the kept states along `axis`, spread over the flat per-mode box
    there (zero outside the kept states; `positions` from box_positions)."""
    padding = [[0, 0]] * len(xp.shape(compact))
    padding[axis] = [0, 1]
    return xp.take(xp.pad(compact, padding), positions, axis=axis)


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
    """How one step moves the state: row indices into the previous layout, per bucket; the
    flat phase index of every row of the current layout for a diagonal gate; or, for a drawn
    jump, per shift k the previous layout's row of each kept state's source and its level on
    the wire ([N, S] each)."""

    step: object  # cvgen.engines.compiled.Step
    buckets: list[Bucket]
    gathers: list[np.ndarray]
    phase_index: np.ndarray | None


class TotalPhotonTruncation:
    """How the compiled engine holds and moves a total-photon truncated state.

    The state is batch-minor, [rows, B], in the layout of the last gate's buckets plus one zero
    row that padding slots gather. Its B columns may be (column, sample) pairs, sample fastest
    (a density matrix's other index, cvgen.engines.noisy): gates built per sample then come
    with one matrix per sample, which acts on every column of that sample. `kets` embeds the
    compact states in the per-mode box [B, N, ..., N] (zero outside the kept states) and
    `fock_probs` has the box's N^M layout, so downstream code written for per-mode kets
    (sampling, datasets) works unchanged.
    """

    name = "total"

    def __init__(self, steps, modes: int, cutoff: int, batch_size: int, dtype: str, xp):
        self.steps, self.modes, self.cutoff = steps, modes, cutoff
        self.batch_size, self.dtype, self.xp = batch_size, dtype, xp
        self.basis = basis_states(modes, cutoff)
        self.plans, self._layouts = _plan_steps(steps, self.basis, cutoff, batch_size)
        self._compact_rows = self._layouts[-1]
        self._compact_of_box = box_positions(self.basis, cutoff)

    def basis_size(self) -> int:
        return len(self.basis)

    def initial(self):
        """The vacuum of every batch element, batch-minor, with the zero row."""
        return self.xp.unit(len(self.basis) + 1, self.batch_size, self.dtype, axis=0)

    def prepare(self, index: int, matrix) -> list:
        """Per bucket, the blocks [K, chains, size, size] (shared: [chains, size, size]); for a
        diagonal gate, its phase per layout row [rows, K]; for a drawn jump, each trajectory's
        source rows and factors [B, S]."""
        xp, plan = self.xp, self.plans[index]
        if plan.step.action == "jump":  # a drawn Kraus operator (a Jump) per trajectory
            rows, levels = (xp.take(table, matrix.shifts, axis=0) for table in plan.gathers)
            return [rows, xp.take_along(matrix.factors, levels, axis=-1)]  # [B, S] each
        size = xp.shape(matrix)[0]
        flat = xp.pad(xp.reshape(matrix, [size, -1]), [[0, 0], [0, 1]])  # a zero at the end
        if not plan.buckets:
            return [xp.transpose(xp.take(flat, plan.phase_index, axis=1), [1, 0])]
        blocks = [xp.take(flat, bucket.blocks, axis=1) for bucket in plan.buckets]
        return [b[0] for b in blocks] if plan.step.shared else blocks

    def apply(self, state, index: int, tensors: list):
        """Step `index`: phases, every bucket's product on rows gathered from the state, or a
        drawn jump's gather of each kept state's source row."""
        xp, plan = self.xp, self.plans[index]
        if plan.step.action == "jump":  # one gather per trajectory: A_k |n> = f |n + d k>
            rows, factors = tensors
            picked = xp.take_along(xp.transpose(state, [1, 0]), rows, axis=-1) * factors
            zero = xp.zeros([1, self.batch_size], self.dtype)
            return xp.concat([xp.transpose(picked, [1, 0]), zero], axis=0)
        if not plan.buckets:
            return _scale_rows(xp, state, tensors[0])
        outputs = [
            _apply_bucket(xp, xp.take(state, rows, axis=0), blocks, bucket, plan.step.shared)
            for bucket, rows, blocks in zip(plan.buckets, plan.gathers, tensors, strict=True)
        ]
        return xp.concat(outputs + [xp.zeros([1, self.batch_size], self.dtype)], axis=0)

    def kets(self, state):
        """The compact states embedded in the per-mode box [B, N, ..., N], zero outside."""
        xp = self.xp
        box = self._to_box(xp.transpose(self.compact(state), [1, 0]))
        return xp.reshape(box, [-1] + [self.cutoff] * self.modes)

    def marginal(self, state, wire: int, after: int | None = None):
        """Photon-number probabilities of mode `wire`, [B, N] (the kept state's), of the state
        as it is after step `after` (-1: the initial state; None: after the last step)."""
        xp = self.xp
        rows = self._layouts[-1 if after is None else after + 1]
        compact = xp.take(state, rows, axis=0)
        probs = xp.real(compact * xp.conj(compact))  # [basis_size, B]
        levels = np.arange(self.cutoff)[:, None] == self.basis[None, :, wire]
        return xp.transpose(xp.asarray(levels, real_dtype(self.dtype)) @ probs, [1, 0])

    def observables(self, state, outputs) -> dict:
        """The outputs of cvgen.engines.observables, computed on the compact state."""
        xp = self.xp
        compact = self.compact(state)  # [basis_size, B]

        def lowering():
            lowered, sqrt_n = lowering_tables(self.basis, self.cutoff)
            padded = xp.pad(compact, [[0, 1], [0, 0]])
            terms = xp.conj(xp.take(padded, lowered, axis=0)) * compact[None]
            return xp.sum(terms * xp.asarray(sqrt_n[..., None], self.dtype), axis=1)

        probs = xp.real(compact * xp.conj(compact))
        return kept_state_outputs(xp, self.basis, probs, lowering, self._to_box, outputs)

    def compact(self, state):
        """The final layout's rows gathered into the compact basis order [basis_size, B]."""
        return self.xp.take(state, self._compact_rows, axis=0)

    def _to_box(self, compact):
        """Rows [count, basis_size] spread over the flat per-mode box [count, N^M], zero-filled."""
        return to_box(self.xp, compact, self._compact_of_box, axis=1)


def kept_state_outputs(xp, basis: np.ndarray, probs, lowering, to_box, outputs) -> dict:
    """The outputs of cvgen.engines.observables of states on the kept `basis` [S, M], from their
    probabilities [S, B] and `lowering()`, <a_m> [M, B] (called only for quad_x or quad_p);
    `to_box` spreads rows [B, S] over the per-mode box. hbar = 2, not renormalised."""
    result = {"norm": xp.sum(probs, axis=0)}
    if "quad_x" in outputs or "quad_p" in outputs:
        means = lowering()
        scale = math.sqrt(2 * HBAR)
        result["quad_x"] = scale * xp.transpose(xp.real(means), [1, 0])
        result["quad_p"] = scale * xp.transpose(xp.imag(means), [1, 0])
    if "mean_photon" in outputs:
        photons = xp.asarray(basis.T, probs.dtype.name)  # [M, S]
        result["mean_photon"] = xp.transpose(photons @ probs, [1, 0])
    if "fock_probs" in outputs:
        result["fock_probs"] = to_box(xp.transpose(probs, [1, 0]))
    return {name: result[name] for name in outputs}


def _apply_bucket(xp, rows, blocks, bucket: Bucket, shared: bool):
    """Multiply gathered rows [chains * size * width, B] by the bucket's blocks.

    Shared blocks [chains, size, size] act on [chains, size, width * B]: one product per chain
    over every member and sample at once. Per-sample blocks [K, chains, size, size] need the
    samples leading, so the rows are transposed there and back; each sample's columns (B / K of
    them, sample fastest) ride along with its members.
    """
    chains, size, width = bucket.members.shape
    batch = xp.shape(rows)[1]
    if shared:
        view = xp.reshape(rows, [chains, size, width * batch])
        out = blocks[0] @ view[0] if chains == 1 else blocks @ view
    else:
        samples = xp.shape(blocks)[0]
        view = xp.reshape(rows, [chains, size, width * batch // samples, samples])
        out = xp.transpose(blocks @ xp.transpose(view, [3, 0, 1, 2]), [1, 2, 3, 0])
    return xp.reshape(out, [-1, batch])


def _scale_rows(xp, state, phases):
    """A diagonal gate: the state [rows, B] times its phases [rows, K], K = 1 (shared), B, or
    the samples of B = columns x K (sample fastest), whose phases act on all their columns."""
    rows, batch = xp.shape(state)
    samples = xp.shape(phases)[1]
    if samples in (1, batch):
        return state * phases
    grouped = xp.reshape(state, [rows, batch // samples, samples]) * phases[:, None, :]
    return xp.reshape(grouped, [rows, batch])


def lowering_tables(basis: np.ndarray, n_total: int) -> tuple[np.ndarray, np.ndarray]:
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


def _plan_steps(steps: list, basis: np.ndarray, n_total: int, batch_size: int):
    """Every step's plan, chaining layouts: each gather reads the previous step's rows.

    Returns the plans and, for the initial state and after every step, the rows of that
    layout holding the compact basis in order (the last: the final layout's).
    """
    row_of = np.arange(len(basis))  # the row of each basis state in the current layout
    layouts = [row_of]
    state_at = np.arange(len(basis) + 1)  # the basis state at each row (-1: none)
    state_at[-1] = -1
    plans = []
    for step in steps:
        zero_row = len(state_at) - 1
        if step.action in ("diagonal", "diagonal2"):
            local = basis[np.maximum(state_at, 0)][:, list(step.wires)]
            phase_index = local @ (n_total ** np.arange(len(step.wires) - 1, -1, -1))
            plans.append(Plan(step, [], [], phase_index))
            layouts.append(row_of)
            continue
        if step.action == "jump":  # out: the compact basis in order, then the zero row
            wire = step.wires[0]
            sources = shift_sources(basis, wire, KRAUS[step.op.name][1], n_total)
            rows = np.where(sources >= 0, row_of[sources], zero_row)
            plans.append(Plan(step, [], [rows, basis[sources, wire]], None))
            row_of = np.arange(len(basis))
            state_at = np.concatenate([row_of, [-1]])
            layouts.append(row_of)
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
        layouts.append(row_of)
    return plans, layouts


def shift_sources(basis: np.ndarray, wire: int, direction: int, n_total: int) -> np.ndarray:
    """[N, S]: for shift k, the kept state that A_k (n -> n + direction k on `wire`) maps to
    each kept state, or -1 where none does (A_k's image of the kept states is dropped there)."""
    sources = np.full((n_total, len(basis)), -1)
    for k in range(n_total):
        source = basis.copy()
        source[:, wire] -= direction * k
        kept = (source[:, wire] >= 0) & (source.sum(axis=1) < n_total)
        sources[k, kept] = index_of(source[kept], basis, n_total)
    return sources


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

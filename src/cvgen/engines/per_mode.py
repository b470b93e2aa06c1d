"""Per-mode truncation: every mode below the cutoff D, the state a [B, D, ..., D] ket.

Each gate is applied by its structure, never as a dense D^M x D^M matrix:
  - diagonal gates (Rgate, Kgate, CKgate) as element-wise phases;
  - single-mode and dense two-mode gates as one matrix product on a reshaped view of the state
    (no transpose of the whole state for gates on neighbouring modes);
  - passive two-mode gates (BSgate, MZgate) conserve n1 + n2: 2D - 1 blocks of D x D, one per
    photon-number sector, instead of one D^2 x D^2 matrix, ~D/2 times fewer multiplications,
    except on the last two modes, where one large dense product is faster.
Kernels take an array namespace `xp` (cvgen.engines.backend).
"""

from __future__ import annotations

import numpy as np

from cvgen.engines.observables import ket_observables

__all__ = ["PerModeTruncation", "sector_tables", "structured_work"]


class PerModeTruncation:
    """How the compiled engine holds and moves a per-mode truncated state."""

    name = "per_mode"

    def __init__(self, steps, modes: int, cutoff: int, batch_size: int, dtype: str, xp):
        self.steps, self.modes, self.cutoff = steps, modes, cutoff
        self.batch_size, self.dtype, self.xp = batch_size, dtype, xp
        self.sectors, self.scatter = sector_tables(cutoff)

    def basis_size(self) -> int:
        return self.cutoff**self.modes

    def initial(self):
        """The vacuum of every batch element."""
        xp = self.xp
        vacuum = xp.unit(self.basis_size(), self.batch_size, self.dtype)
        return xp.reshape(vacuum, [self.batch_size] + [self.cutoff] * self.modes)

    def prepare(self, index: int, matrix) -> list:
        """What step `index` applies, from its matrix [K, ...]: the matrix in the wire order the
        kernel expects, or a passive gate's sector blocks."""
        xp, step = self.xp, self.steps[index]
        if step.action in ("single", "diagonal"):
            return [matrix]
        first, second = step.wires
        if step.action == "diagonal2":
            return [xp.transpose(matrix, [0, 2, 1]) if first > second else matrix]
        if first > second:  # the gate's first mode must be the lower axis
            matrix = xp.transpose(matrix, [0, 2, 1, 4, 3])
        if step.action == "passive" and min(first, second) < self.modes - 2:
            return [_sector_blocks(xp, matrix, self.sectors)]
        return [matrix]

    def apply(self, state, index: int, tensors: list):
        """Step `index` applied to the state, its prepared tensors shared (leading axis 1) or
        per sample."""
        xp, step = self.xp, self.steps[index]
        (tensor,) = tensors
        batch, cutoff, modes = self.batch_size, self.cutoff, self.modes
        leading = 1 if step.shared else batch
        if step.action in ("diagonal", "diagonal2"):
            broadcast = [leading] + [1] * modes
            for wire in step.wires:
                broadcast[wire + 1] = cutoff
            return state * xp.reshape(tensor, broadcast)
        if step.action == "single":
            return _apply_dense(xp, state, tensor, step.wires[0], 1, step.shared)
        first, second = sorted(step.wires)
        if step.action == "passive" and first < modes - 2:
            pair = _apply_sectors
        else:
            pair = _apply_two_dense
        if second == first + 1:
            return pair(xp, state, tensor, first, step.shared, self)
        # Not neighbours: bring the second mode next to the first, apply, move it back.
        order = list(range(modes + 1))
        order.insert(first + 2, order.pop(second + 1))
        moved = pair(xp, xp.transpose(state, order), tensor, first, step.shared, self)
        return xp.transpose(moved, np.argsort(order).tolist())

    def observables(self, state, outputs) -> dict:
        return ket_observables(self.xp, state, outputs)

    def kets(self, state):
        return state


def _apply_two_dense(xp, state, matrix, mode: int, shared: bool, truncation):
    """A two-mode gate [K, m1, m2, n1, n2] on modes (mode, mode + 1) as one dense matrix."""
    cutoff = truncation.cutoff
    flat = xp.reshape(matrix, [-1, cutoff * cutoff, cutoff * cutoff])
    return _apply_dense(xp, state, flat, mode, 2, shared)


def _apply_sectors(xp, state, blocks, mode: int, shared: bool, truncation):
    """A gate conserving n1 + n2 on modes (mode, mode + 1), from its [K, 2D-1, D, D] blocks.

    The pairs (k, N - k) of sector N are gathered (padded with a zero row to D per sector),
    multiplied block by block, and scattered back.
    """
    shape = xp.shape(state)
    batch, cutoff, modes = shape[0], truncation.cutoff, truncation.modes
    after = cutoff ** (modes - mode - 2)
    sectors, scatter = truncation.sectors, truncation.scatter
    rows = batch * cutoff**mode
    padded = xp.pad(xp.reshape(state, [rows, cutoff * cutoff, after]), [[0, 0], [0, 1], [0, 0]])
    if shared:  # sectors leading: one batched product over all rows at once
        gathered = xp.take(xp.transpose(padded, [1, 0, 2]), sectors, axis=0)
        out = blocks[0] @ xp.reshape(gathered, [2 * cutoff - 1, cutoff, rows * after])
        out = xp.reshape(out, [(2 * cutoff - 1) * cutoff, rows, after])
        return xp.reshape(xp.transpose(xp.take(out, scatter, axis=0), [1, 0, 2]), shape)
    gathered = xp.take(xp.reshape(padded, [batch, -1, cutoff * cutoff + 1, after]), sectors, 2)
    out = blocks[:, None] @ gathered  # [B, P, 2D-1, D, after]
    out = xp.reshape(out, [batch, -1, (2 * cutoff - 1) * cutoff, after])
    return xp.reshape(xp.take(out, scatter, axis=2), shape)


def sector_tables(cutoff: int) -> tuple[np.ndarray, np.ndarray]:
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


def _sector_blocks(xp, matrix, sectors: np.ndarray):
    """The [K, 2D-1, D, D] blocks of a number-conserving gate [K, m1, m2, n1, n2]."""
    size = int(sectors.max()) + 1  # D^2 + 1, the last row and column zero
    flat = xp.reshape(matrix, [-1, size - 1, size - 1])
    flat = xp.reshape(xp.pad(flat, [[0, 0], [0, 1], [0, 1]]), [-1, size * size])
    index = sectors[:, :, None] * size + sectors[:, None, :]
    return xp.take(flat, index, axis=1)


def _apply_dense(xp, state, matrix, mode: int, width: int, shared: bool):
    """Contract a [K, D^w, D^w] matrix with `width` neighbouring modes starting at `mode`."""
    shape = xp.shape(state)
    batch, cutoff, modes = shape[0], shape[1], len(shape) - 1
    before = cutoff**mode
    size = cutoff**width
    after = cutoff ** (modes - mode - width)
    if after == 1:  # the gate's modes are last: one matrix product over all other indices
        if shared:
            rows = xp.reshape(state, [batch * before, size])
            out = rows @ xp.transpose(matrix[0], [1, 0])
        else:
            rows = xp.reshape(state, [batch, before, size])
            out = rows @ xp.transpose(matrix, [0, 2, 1])
    else:
        view = xp.reshape(state, [batch, before, size, after])
        out = (matrix[0] if shared else matrix[:, None]) @ view
    return xp.reshape(out, shape)


def structured_work(steps, modes: int, cutoff: int) -> int:
    """Complex multiply-adds per sample that these kernels must do: the structured roofline.

    Diagonal gates: one per amplitude; single-mode: D per amplitude; passive gates: for every
    configuration of the other modes, sum over sectors N of (pairs in N)^2, the unpadded sector
    blocks (~2D^3/3, where a dense product takes D^4); other two-mode gates D^2 per amplitude.
    """
    state = cutoff**modes
    sector_sizes = np.bincount(np.add.outer(np.arange(cutoff), np.arange(cutoff)).ravel())
    sector_work = int(np.sum(sector_sizes**2))
    work = 0
    for step in steps:
        if step.action in ("diagonal", "diagonal2"):
            work += state
        elif step.action == "single":
            work += state * cutoff
        elif step.action == "passive":
            work += sector_work * (state // cutoff**2)
        else:
            work += state * cutoff**2
    return work

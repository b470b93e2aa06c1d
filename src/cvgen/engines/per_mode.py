"""Per-mode truncation: every mode below the cutoff D, the state of D^M amplitudes per sample.

Each gate is applied by its structure, never as a dense D^M x D^M matrix:
  - diagonal gates (Rgate, Kgate, CKgate) as element-wise phases;
  - single-mode and dense two-mode gates as one matrix product on a reshaped view of the state
    (no transpose of the whole state for gates on neighbouring modes);
  - passive two-mode gates (BSgate, MZgate) conserve n1 + n2: one block per photon-number
    sector N (its min(N, 2D - 2 - N) + 1 pairs), ~2D^3/3 multiplications per configuration of
    the other modes instead of D^4.
Kernels take an array namespace `xp` (cvgen.engines.backend); numpy's strided views let the
sector products run in place, other backends gather the sectors.
"""

from __future__ import annotations

import numpy as np

from cvgen.engines.channels import jump_matrix
from cvgen.engines.observables import ket_observables

__all__ = ["PerModeTruncation", "sector_tables", "structured_work"]


class PerModeTruncation:
    """How the compiled engine holds and moves a per-mode truncated state.

    The state is held batch-last, [D, ..., D, B]: every gate shared by the batch then acts on
    a view [D^m, D^w, rest * B] whose columns are long (the batch is always among them), so
    each product is a large matrix product, and a passive gate's sectors are strided views of
    the state (numpy multiplies them in place, without gathering). Gates with per-sample
    matrices move the batch first, apply, and move it back.
    """

    name = "per_mode"

    def __init__(self, steps, modes: int, cutoff: int, batch_size: int, dtype: str, xp):
        self.steps, self.modes, self.cutoff = steps, modes, cutoff
        self.batch_size, self.dtype, self.xp = batch_size, dtype, xp
        self.sectors, self.scatter = sector_tables(cutoff)
        self.shape = [cutoff] * modes + [batch_size]

    def basis_size(self) -> int:
        return self.cutoff**self.modes

    def initial(self):
        """The vacuum of every batch element."""
        xp = self.xp
        return xp.reshape(xp.unit(self.basis_size(), self.batch_size, self.dtype, 0), self.shape)

    def product_state(self, columns: list):
        """The product state whose mode m is columns[m] ([K, D], K = 1 or the batch)."""
        xp = self.xp
        state = None
        for column in columns:
            factor = xp.transpose(column, [1, 0])  # [D, K]
            if xp.shape(factor)[1] != self.batch_size:
                factor = xp.broadcast_to(factor, [self.cutoff, self.batch_size])
            state = factor if state is None else state[..., None, :] * factor
        return state

    def prepare(self, index: int, matrix) -> list:
        """What step `index` applies, from its matrix [K, ...]: the matrix in the wire order the
        kernel expects, or a passive gate's sector blocks."""
        xp, step = self.xp, self.steps[index]
        if step.action in ("single", "diagonal"):
            return [matrix]
        if step.action == "jump":  # a drawn Kraus operator per trajectory, as its matrix
            return [jump_matrix(xp, matrix, self.cutoff, self.dtype)]
        first, second = step.wires
        if step.action == "diagonal2":
            return [xp.transpose(matrix, [0, 2, 1]) if first > second else matrix]
        if first > second:  # the gate's first mode must be the lower axis
            matrix = xp.transpose(matrix, [0, 2, 1, 4, 3])
        if step.action == "passive":
            return [_sector_blocks(xp, matrix, self.sectors)]
        return [matrix]

    def apply(self, state, index: int, tensors: list):
        """Step `index` applied to the state, its prepared tensors shared (leading axis 1) or
        per sample."""
        xp, step = self.xp, self.steps[index]
        (tensor,) = tensors
        if step.action in ("diagonal", "diagonal2"):
            return state * self._phases(tensor, sorted(step.wires), step.shared)
        if step.action in ("single", "jump"):
            return self._pair_or_single(state, tensor, step.wires[0], 1, step)
        first, second = sorted(step.wires)
        if second == first + 1:
            return self._pair_or_single(state, tensor, first, 2, step)
        # Not neighbours: bring the second mode next to the first, apply, move it back.
        order = list(range(self.modes + 1))
        order.insert(first + 1, order.pop(second))
        moved = self._pair_or_single(xp.transpose(state, order), tensor, first, 2, step)
        return xp.transpose(moved, np.argsort(order).tolist())

    def observables(self, state, outputs) -> dict:
        return ket_observables(self.xp, self.kets(state), outputs)

    def marginal(self, state, wire: int, after: int | None = None):
        """Photon-number probabilities of mode `wire`, [B, D] (the truncated state's; the
        layout does not change between steps, so `after` is not needed)."""
        xp = self.xp
        probs = xp.real(state * xp.conj(state))
        others = [axis for axis in range(self.modes) if axis != wire]
        marginal = xp.sum(probs, axis=others) if others else probs
        return xp.transpose(marginal, [1, 0])

    def kets(self, state):
        """The batch-first kets [B, D, ..., D]."""
        return self.xp.transpose(state, [self.modes, *range(self.modes)])

    def _phases(self, tensor, wires: list[int], shared: bool):
        """Phases [K, D] or [K, D, D] shaped to multiply the batch-last state."""
        shape = [1] * self.modes + [1 if shared else self.batch_size]
        for wire in wires:
            shape[wire] = self.cutoff
        if shared:
            return self.xp.reshape(tensor, shape)
        order = [*range(1, len(wires) + 1), 0]  # batch last
        return self.xp.reshape(self.xp.transpose(tensor, order), shape)

    def _pair_or_single(self, state, tensor, mode: int, width: int, step):
        """A gate on `width` neighbouring modes from `mode`."""
        xp, cutoff = self.xp, self.cutoff
        if not step.shared:  # per-sample matrices: batch first, one product per sample
            first = self.kets(state)
            if step.action == "passive":
                out = _apply_sectors_per_sample(xp, first, tensor, mode, self)
            else:
                out = _apply_dense(xp, first, _flat(xp, tensor, cutoff, width), mode, width)
            return xp.transpose(out, [*range(1, self.modes + 1), 0])
        rows = cutoff**width
        view = xp.reshape(state, [cutoff**mode, rows, -1])  # [before, D^w, after * B]
        if step.action == "passive":
            if xp.name == "numpy":
                out = _sector_products_strided(view, tensor[0], cutoff)
            else:
                out = _sector_products_gathered(xp, view, tensor[0], self)
        else:
            out = _flat(xp, tensor, cutoff, width)[0] @ view
        return xp.reshape(out, xp.shape(state))


def _flat(xp, matrix, cutoff: int, width: int):
    """A gate's matrix [K, D^w, D^w] (two-mode ones come as [K, m1, m2, n1, n2])."""
    return xp.reshape(matrix, [-1, cutoff**width, cutoff**width])


def _sector_products_strided(view: np.ndarray, blocks: np.ndarray, cutoff: int) -> np.ndarray:
    """Sector N's pairs (k, N - k) are the rows N + k (D - 1) of the view [P, D^2, C]: a strided
    slice, multiplied by its block in place (numpy hands strided slices to BLAS as they are)."""
    out = np.empty_like(view)
    step = cutoff - 1
    for total in range(2 * cutoff - 1):
        low = max(0, total - cutoff + 1)
        size = min(total, cutoff - 1) - low + 1
        first = total + low * step
        rows = slice(first, first + (size - 1) * step + 1, step)
        np.matmul(blocks[total, :size, :size], view[:, rows], out=out[:, rows])
    return out


def _sector_products_gathered(xp, view, blocks, truncation):
    """The same products for backends without strided views: the sectors gathered (padded
    with a zero row to D pairs each), multiplied, and scattered back."""
    cutoff = truncation.cutoff
    shape = xp.shape(view)
    padded = xp.pad(view, [[0, 0], [0, 1], [0, 0]])
    gathered = xp.take(padded, truncation.sectors, axis=1)  # [P, 2D-1, D, C]
    out = xp.reshape(blocks[None] @ gathered, [shape[0], (2 * cutoff - 1) * cutoff, shape[2]])
    return xp.take(out, truncation.scatter, axis=1)


def _apply_sectors_per_sample(xp, state, blocks, mode: int, truncation):
    """A passive gate with per-sample blocks [B, 2D-1, D, D] on modes (mode, mode + 1) of the
    batch-first state [B, D, ..., D]: gathered sectors, one product per sample."""
    shape = xp.shape(state)
    batch, cutoff, modes = shape[0], truncation.cutoff, truncation.modes
    after = cutoff ** (modes - mode - 2)
    view = xp.reshape(state, [batch, -1, cutoff * cutoff, after])
    padded = xp.pad(view, [[0, 0], [0, 0], [0, 1], [0, 0]])
    gathered = xp.take(padded, truncation.sectors, axis=2)  # [B, P, 2D-1, D, after]
    out = blocks[:, None] @ gathered
    out = xp.reshape(out, [batch, -1, (2 * cutoff - 1) * cutoff, after])
    return xp.reshape(xp.take(out, truncation.scatter, axis=2), shape)


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


def _apply_dense(xp, state, matrix, mode: int, width: int):
    """Per-sample [B, D^w, D^w] matrices on `width` neighbouring modes from `mode` of the
    batch-first state [B, D, ..., D]."""
    shape = xp.shape(state)
    batch, cutoff = shape[0], shape[1]
    view = xp.reshape(state, [batch, cutoff**mode, cutoff**width, -1])
    return xp.reshape(matrix[:, None] @ view, shape)


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

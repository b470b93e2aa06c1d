"""State sizes and work: how many amplitudes a truncation keeps, what a batch's memory scales
with, and the multiply-adds of a circuit per sample.

Stated once for the engines, the backend cost model, the memory and time estimates and the
convergence check. Known without importing SF (a Blackbird script is only parsed).
"""

from __future__ import annotations

import math

from cvgen.circuits import CircuitSpec

__all__ = [
    "amplitudes_per_sample",
    "basis_size",
    "box_size",
    "gate_wire_counts",
    "gate_work",
    "log2_basis_size",
    "total_photon_basis_size",
]


def box_size(modes: int, cutoff: int) -> int:
    """Per-mode truncation: every mode below `cutoff`, cutoff^modes states (the Fock box)."""
    return cutoff**modes


def total_photon_basis_size(modes: int, n_total: int) -> int:
    """Total-photon truncation: states with fewer than `n_total` photons, C(N + M - 1, M)."""
    return math.comb(n_total + modes - 1, modes)


def basis_size(modes: int, cutoff: int, truncation: str) -> int:
    """Number of Fock states a truncation (`per_mode` or `total`) keeps."""
    if truncation == "total":
        return total_photon_basis_size(modes, cutoff)
    return box_size(modes, cutoff)


def log2_basis_size(modes: int, cutoff: int, truncation: str) -> float:
    """log2 of basis_size, without computing the number (which, for a large circuit, has
    thousands of digits)."""
    if truncation == "total":  # C(cutoff + modes - 1, modes)
        n = cutoff + modes - 1
        log_comb = math.lgamma(n + 1) - math.lgamma(modes + 1) - math.lgamma(cutoff)
        return log_comb / math.log(2)
    return modes * math.log2(cutoff)


def amplitudes_per_sample(modes: int, cutoff: int) -> int:
    """A sample's per-mode state plus a two-mode gate: what a batch's memory scales with."""
    return box_size(modes, cutoff) + (cutoff**4 if modes > 1 else 0)


def gate_work(circuit: CircuitSpec) -> float:
    """Multiply-adds of applying the circuit's gates to one sample's ket of cutoff^modes entries.

    A gate on k modes is a (D^k x D^k) matrix applied to every D^k slice of the state, D^(M+k)
    multiply-adds; an Interferometer on n modes counts as its n(n-1)/2 beamsplitters and n
    rotations, the ops SF's compiler turns it into.
    """
    state = circuit.cutoff**circuit.modes
    return sum(state * circuit.cutoff**wires for wires in gate_wire_counts(circuit))


def gate_wire_counts(circuit: CircuitSpec) -> list[int]:
    """How many modes each gate of the circuit acts on, in order."""
    if circuit.gates is not None:
        ops = [(name, len(wires)) for name, _, wires in circuit.gates]
    else:
        import blackbird

        program = blackbird.loads(circuit.blackbird_text)
        ops = [(op["op"], len(op["modes"])) for op in program.operations]
    counts = []
    for name, wires in ops:
        if name == "Interferometer":
            counts += [2] * (wires * (wires - 1) // 2) + [1] * wires
        else:
            counts.append(wires)
    return counts

"""Train/validation/test splits by circuit: deterministic from the seed and the circuit index.

A split assigns whole circuits to its parts, never single samples or shots, so per-circuit
values (QNN weights, a GBS graph) never appear in two parts: a model tested on a part has not
seen its circuits. Parts are listed by name in sorted order (the config hash sorts keys too, so
the order the config lists them in cannot change the split).

Counts: every part gets at least one circuit, the rest by largest remainder of
fraction x n_circuits. Assignment: each circuit draws one uniform number u_c from a stream keyed
on (seed, SPLIT_STREAM, block of circuits), so u_c depends only on the seed and the circuit's
index; circuits sorted by u_c fill the parts in name order with their counts. The same config
gives the same split on every machine, whatever the shards or cores.
"""

from __future__ import annotations

import math

import numpy as np

from cvgen.errors import CvgenError
from cvgen.streams import SPLIT_STREAM, block_uniforms

__all__ = ["SUM_TOLERANCE", "assign_circuits", "part_counts", "sample_rows", "split_fractions"]

SUM_TOLERANCE = 1e-9


def split_fractions(split: dict | None, n_circuits: int) -> dict[str, float] | None:
    """The config's `split` checked against the dataset (fractions add up to 1, at least one
    circuit per part), as floats by sorted part name; None when the config asks for no split.
    A problem is one CvgenError naming it and the fix."""
    if not split:
        return None
    fractions = {name: float(split[name]) for name in sorted(split)}
    total = math.fsum(fractions.values())
    if abs(total - 1) > SUM_TOLERANCE:
        terms = " + ".join(f"{name} {value:g}" for name, value in fractions.items())
        raise CvgenError(
            f"config key split: the fractions add up to {total:g} ({terms}), not 1; change them "
            f"so that they sum to 1"
        )
    if n_circuits < len(fractions):
        raise CvgenError(
            f"config key split has {len(fractions)} parts ({', '.join(fractions)}) but "
            f"n_circuits is {n_circuits}: samples are split by circuit, so that no circuit's "
            f"samples fall in two parts; raise n_circuits to at least {len(fractions)} or use "
            f"fewer parts"
        )
    return fractions


def part_counts(fractions: dict[str, float], n_circuits: int) -> dict[str, int]:
    """Circuits per part: at least one each, the rest by largest remainder (ties: name order)."""
    names = list(fractions)
    wanted = [round(fractions[name] * n_circuits, 9) for name in names]
    counts = [max(1, math.floor(value)) for value in wanted]
    while sum(counts) < n_circuits:
        gaps = [value - count for value, count in zip(wanted, counts, strict=True)]
        counts[gaps.index(max(gaps))] += 1
    while sum(counts) > n_circuits:
        excess = [
            count - value if count > 1 else -math.inf
            for value, count in zip(wanted, counts, strict=True)
        ]
        counts[excess.index(max(excess))] -= 1
    return dict(zip(names, counts, strict=True))


def assign_circuits(seed: int, fractions: dict[str, float], n_circuits: int) -> np.ndarray:
    """The part of every circuit, as its index in `fractions` (n_circuits,) uint8."""
    keys = block_uniforms(seed, SPLIT_STREAM, 0, n_circuits, ())
    order = np.argsort(keys, kind="stable")
    parts = np.empty(n_circuits, dtype=np.uint8)
    start = 0
    for index, count in enumerate(part_counts(fractions, n_circuits).values()):
        parts[order[start : start + count]] = index
        start += count
    return parts


def sample_rows(circuit_parts: np.ndarray, circuit_index: np.ndarray, part: int) -> np.ndarray:
    """The sample rows (sorted, int64) whose circuit belongs to part number `part`."""
    return np.flatnonzero(circuit_parts[circuit_index] == part).astype(np.int64)

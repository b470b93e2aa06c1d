"""Seeded random streams: every random number cvgen draws comes from here.

A stream is keyed on the root seed and a fixed logical position (stream number, circuit,
parameter name, block of SAMPLE_BLOCK samples), never on a process, shard or batch, so every
value depends only on its place in the dataset: not on shard size, shard count, batch size or
the number of cores, and growing a dataset keeps every value already drawn.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = [
    "CONVERGENCE_STREAM",
    "FOCK_STREAM",
    "HETERODYNE_STREAM",
    "HOMODYNE_STREAM",
    "GAUSSIAN_STREAM",
    "PER_CIRCUIT_STREAM",
    "PER_SAMPLE_STREAM",
    "SAMPLE_BLOCK",
    "SPLIT_STREAM",
    "TEMPLATE_STREAM",
    "TRAJECTORY_STREAM",
    "DETECTOR_STREAM",
    "block_uniforms",
    "keyed",
    "name_key",
    "row_uniforms",
    "stream",
]

SAMPLE_BLOCK = 1024
PER_CIRCUIT_STREAM = 0  # per-circuit parameter values
PER_SAMPLE_STREAM = 1  # per-sample parameter values
HOMODYNE_STREAM = 2  # homodyne outcomes
FOCK_STREAM = 3  # photon-number outcomes
CONVERGENCE_STREAM = 4  # which samples the truncation check re-runs
HETERODYNE_STREAM = 5  # heterodyne outcomes
GAUSSIAN_STREAM = 6  # the Gaussian engine's normal draws and photon-number chain
TEMPLATE_STREAM = 7  # random circuits of templates (the GBS template's interferometer)
SPLIT_STREAM = 8  # which part of a train/val/test split each circuit falls in
TRAJECTORY_STREAM = 9  # quantum-jump draws of the Fock engines' channels (cvgen.engines.noisy)
DETECTOR_STREAM = 10  # detector inefficiency and dark counts of photon-counting outcomes


def keyed(seed: int, *key: int) -> np.random.Generator:
    """The generator at logical position `key` under the root seed (a SeedSequence spawn key)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator of the entropy [seed, *key] (the convergence check's row choice)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def name_key(name: str) -> int:
    """A parameter name as a stable integer key (its SHA-256, first 8 bytes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def block_uniforms(seed: int, stream_number: int, start: int, stop: int, shape: tuple):
    """Uniform numbers [stop - start, *shape] for samples [start, stop) of the dataset.

    Drawn block by block of SAMPLE_BLOCK samples from a stream keyed on the block, so a sample's
    numbers are the same whichever shard or batch it falls in.
    """
    first, last = start // SAMPLE_BLOCK, (stop - 1) // SAMPLE_BLOCK
    blocks = [
        keyed(seed, stream_number, block).random((SAMPLE_BLOCK, *shape))
        for block in range(first, last + 1)
    ]
    offset = start - first * SAMPLE_BLOCK
    return np.concatenate(blocks)[offset : offset + stop - start]


def row_uniforms(seed: int, stream_number: int, rows: np.ndarray, size: int, *key: int):
    """Uniform numbers [len(rows), size] for the dataset samples `rows` (any indices), from
    streams keyed (seed, stream, *key, block of SAMPLE_BLOCK samples): a sample's numbers depend
    only on its position and `key`, not on which samples are drawn with it."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), size))
    blocks = rows // SAMPLE_BLOCK
    for block in np.unique(blocks):
        inside = blocks == block
        values = keyed(seed, stream_number, *key, int(block)).random((SAMPLE_BLOCK, size))
        out[inside] = values[rows[inside] - block * SAMPLE_BLOCK]
    return out

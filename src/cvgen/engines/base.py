"""The engine interface every simulation engine implements, and what engines share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Engine", "padded"]


@runtime_checkable
class Engine(Protocol):
    """Simulates a circuit for batches of samples whose parameter values are given as arrays.

    `args` maps every free parameter to an array of at least `count` values. `evaluate` returns
    the output kets [count, D, ..., D] (the backend's arrays; None when `kets` is False) and the
    engine's `outputs` as numpy arrays; `describe` says what the engine ran (name, backend,
    truncation, set-up costs) for shards and the report.
    """

    name: str
    batch_size: int
    outputs: tuple[str, ...]

    @property
    def backend(self) -> str: ...

    def evaluate(self, args: dict[str, np.ndarray], count: int, kets: bool = True): ...

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]: ...

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None) -> Engine: ...

    def describe(self) -> dict: ...


def padded(values: np.ndarray, size: int) -> np.ndarray:
    """A short batch's values repeated at the end up to `size`; the padding is dropped later."""
    return np.concatenate([values, np.repeat(values[-1:], size - len(values))])

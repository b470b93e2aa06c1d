"""Strawberry Fields' TF backend in batch mode: the fallback engine and the oracle."""

from __future__ import annotations

import dataclasses

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.conventions import COMPUTED_OUTPUTS
from cvgen.engines.backend import tensorflow
from cvgen.engines.base import padded
from cvgen.engines.observables import ket_observables
from cvgen.errors import CvgenError

__all__ = ["SFEngine"]


class SFEngine:
    """SF's TF backend: the Program is built once and re-run for every batch.

    A Program locks after its first run, so it is built once with symbolic parameters and each
    batch only resets the engine and binds new `args`. SF rejects batch_size=1, so
    batch_size 1 runs SF unbatched, sample by sample. A short final batch is padded with copies
    of its last sample and the padding is dropped.
    """

    name = "sf"
    backend = "tensorflow"

    def __init__(
        self, circuit: CircuitSpec, batch_size: int, outputs=COMPUTED_OUTPUTS, threads: int = 1
    ):
        if circuit.truncation != "per_mode":
            raise CvgenError(
                "circuit.truncation total needs the compiled engine (SF truncates each mode): "
                "set engine: compiled or truncation: per_mode"
            )
        self.xp = tensorflow(threads)
        import strawberryfields as sf

        tf = self.xp.tf
        self.circuit = circuit
        self.batch_size = batch_size
        self.outputs = tuple(outputs)
        self.threads = threads
        self.program = circuit.build_program()
        options = {"cutoff_dim": circuit.cutoff, "dtype": getattr(tf, circuit.dtype)}
        if batch_size > 1:
            options["batch_size"] = batch_size
        self._engine = sf.Engine("tf", backend_options=options)
        self._fresh = True

    def at_cutoff(self, cutoff: int, batch_size: int | None = None, outputs=None) -> SFEngine:
        """A new SF engine at another cutoff (SF's backend fixes the cutoff at creation)."""
        circuit = dataclasses.replace(self.circuit, cutoff=cutoff)
        outputs = self.outputs if outputs is None else outputs
        return SFEngine(circuit, batch_size or self.batch_size, outputs, self.threads)

    def describe(self) -> dict:
        return {"engine": self.name, "backend": self.backend, "truncation": "per_mode"}

    def kets(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] for `count` samples (count <= batch_size)."""
        if self.batch_size == 1:
            kets = [self._run({k: v[i] for k, v in args.items()}) for i in range(count)]
            return self.xp.stack(kets)
        return self._run({k: padded(v, self.batch_size) for k, v in args.items()})[:count]

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """The configured outputs for `count` samples, computed from the kets."""
        return self.evaluate(args, count, kets=False)[1]

    def evaluate(self, args: dict[str, np.ndarray], count: int, kets: bool = True):
        """Output kets [count, D, ..., D] and the configured outputs as numpy arrays."""
        states = self.kets(args, count)
        values = ket_observables(self.xp, states, self.outputs)
        return (states if kets else None), {n: self.xp.numpy(v) for n, v in values.items()}

    def _run(self, args: dict):
        if not self._fresh:  # SF's reset fails before the first run
            self._engine.reset()
        self._fresh = False
        state = self._engine.run(self.program, args=args).state
        if not state.is_pure:
            raise CvgenError(
                "the circuit's output state is mixed (e.g. a state preparation on a subset of "
                "modes); use gates on the vacuum instead"
            )
        return state.ket()

"""Simulation engines: turn a circuit and per-sample parameter arrays into output kets.

One interface for every engine: `engine.kets(args, count)` returns a [count, D, ..., D] ket
tensor for `count` samples whose parameter values are given as arrays in `args`;
`engine.observables` the configured outputs, and `engine.evaluate` both from one run.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from cvgen.circuits import CircuitSpec
from cvgen.errors import CvgenError
from cvgen.observables import OUTPUTS, ket_observables

log = logging.getLogger(__name__)

ENGINES = ("sf", "compiled")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")


def configure_tensorflow(threads: int):
    """Import TF with `threads` intra/inter-op threads; must run before the first TF op."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        log.warning(
            "TensorFlow was already initialised in this process; it keeps %d intra-op threads",
            tf.config.threading.get_intra_op_parallelism_threads(),
        )
    return tf


def padded(values: np.ndarray, size: int) -> np.ndarray:
    """A short batch's values repeated at the end up to `size`; the padding is dropped later."""
    return np.concatenate([values, np.repeat(values[-1:], size - len(values))])


def make_engine(name: str, circuit: CircuitSpec, batch_size: int, shared_names=(), outputs=OUTPUTS):
    """The engine called `name`, ready to run batches of `batch_size` samples.

    `shared_names` are per-circuit parameters (constant across a circuit's samples); `outputs`
    the observables that `engine.observables` returns. A circuit with total-photon truncation
    runs on the compiled engine's total-photon variant (cvgen.total_photon).
    """
    if name == "sf":
        if circuit.truncation != "per_mode":
            raise CvgenError(
                "circuit.truncation total needs the compiled engine (SF truncates each mode): "
                "set engine: compiled or truncation: per_mode"
            )
        return SFEngine(circuit, batch_size, outputs)
    if name == "compiled" and circuit.truncation == "total":
        from cvgen.total_photon import TotalPhotonEngine

        return TotalPhotonEngine(circuit, batch_size, shared_names, outputs)
    if name == "compiled":
        from cvgen.compiled import CompiledEngine

        return CompiledEngine(circuit, batch_size, shared_names, outputs)
    raise CvgenError(f"engine {name!r} is unknown; choose one of {', '.join(ENGINES)}")


class SFEngine:
    """Strawberry Fields' TF backend in batch mode: the Program is built once and re-run.

    A Program locks after its first run, so it is built once with symbolic parameters and each
    batch only resets the engine and binds new `args`. SF rejects batch_size=1, so
    batch_size 1 runs SF unbatched, sample by sample. A short final batch is padded with copies
    of its last sample and the padding is dropped.
    """

    name = "sf"

    def __init__(self, circuit: CircuitSpec, batch_size: int, outputs=OUTPUTS):
        import strawberryfields as sf
        import tensorflow as tf

        self.circuit = circuit
        self.batch_size = batch_size
        self.outputs = tuple(outputs)
        self.program = circuit.build_program()
        options = {"cutoff_dim": circuit.cutoff, "dtype": getattr(tf, circuit.dtype)}
        if batch_size > 1:
            options["batch_size"] = batch_size
        self._engine = sf.Engine("tf", backend_options=options)
        self._fresh = True

    def kets(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] for `count` samples (count <= batch_size)."""
        import tensorflow as tf

        if self.batch_size == 1:
            kets = [self._run({k: v[i] for k, v in args.items()}) for i in range(count)]
            return tf.stack(kets)
        return self._run({k: padded(v, self.batch_size) for k, v in args.items()})[:count]

    def observables(self, args: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
        """The configured outputs for `count` samples, computed from the kets."""
        return self.evaluate(args, count)[1]

    def evaluate(self, args: dict[str, np.ndarray], count: int):
        """Output kets [count, D, ..., D] and the configured outputs as numpy arrays."""
        kets = self.kets(args, count)
        return kets, ket_observables(kets, self.outputs)

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

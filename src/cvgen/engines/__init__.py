"""Simulation engines: one interface (cvgen.engines.base.Engine), a registry, and a factory.

  compiled      cvgen's op list on numpy or TensorFlow, per-mode or total-photon truncation
                (cvgen.engines.compiled, .per_mode, .total_photon; kernels in .gates,
                .observables; array namespaces in .backend; backend choice in .cost)
  gaussian      exact means and covariances of Gaussian circuits, batched on numpy
                (cvgen.engines.gaussian; maps in cvgen.gaussian.symplectic)
  sf            Strawberry Fields' batched TF backend, the fallback and oracle (cvgen.engines.sf)

An engine is added by writing a module with a class implementing Engine and naming it in
ENGINES; the stages only ever call `make_engine`.
"""

from __future__ import annotations

import importlib

from cvgen.circuits import CircuitSpec, compile_circuit
from cvgen.conventions import COMPUTED_OUTPUTS
from cvgen.engines.backend import configure_tensorflow, namespace
from cvgen.engines.base import Engine
from cvgen.errors import CvgenError

__all__ = ["ENGINES", "Engine", "configure_tensorflow", "make_engine"]

# Engine name -> "module:class", imported only when used (SF's engine imports SF and TF).
ENGINES = {
    "compiled": "cvgen.engines.compiled:CompiledEngine",
    "gaussian": "cvgen.engines.gaussian:GaussianEngine",
    "sf": "cvgen.engines.sf:SFEngine",
}


def make_engine(
    name: str,
    circuit: CircuitSpec,
    batch_size: int,
    shared_names=(),
    outputs=COMPUTED_OUTPUTS,
    backend: str = "numpy",
    threads: int = 1,
    noise=None,
    seed: int = 0,
    shots: int = 0,
) -> Engine:
    """The engine called `name`, ready to run batches of `batch_size` samples.

    `shared_names` are per-circuit parameters (constant across a circuit's samples); `outputs`
    the observables it computes; `backend` the array namespace of the compiled engine (the SF
    engine always runs on TF); `noise` (a cvgen.noise.NoisePlan) runs a lossy circuit on density
    matrices or trajectories, `shots` trajectories per sample for the sampler, keyed on
    `seed`. A circuit without its op list is compiled first (a job's
    circuit comes compiled from params.h5, so jobs never import SF for this).
    """
    if name not in ENGINES:
        raise CvgenError(f"engine {name!r} is unknown; choose one of {', '.join(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    engine_class = getattr(importlib.import_module(module), cls)
    if name == "sf":
        return engine_class(circuit, batch_size, outputs, threads=threads)
    if name == "gaussian":
        return engine_class(compile_circuit(circuit, name), batch_size, shared_names, outputs)
    xp = namespace(backend, threads)
    if noise is not None and noise.channels:  # a mixed state: cvgen.engines.noisy
        from cvgen.engines.noisy import NoisyEngine

        compiled = compile_circuit(circuit)
        return NoisyEngine(compiled, batch_size, shared_names, outputs, xp, noise, seed, shots)
    return engine_class(compile_circuit(circuit), batch_size, shared_names, outputs, xp)

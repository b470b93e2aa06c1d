"""Loss and noise in the Fock engines: which exact path runs a lossy circuit, and why.

A circuit with channels (LossChannel, ThermalLossChannel) has a mixed output state rho. The
compiled engine computes it exactly in one of two ways (cvgen.engines.noisy):

  density_matrix  batched density matrices (per-mode truncation: [B, D^M, D^M]; total
                  truncation: [B, S, S] on the S kept states): every gate applied as U rho U^+
                  by the pure-state kernels on a doubled circuit (total truncation: P U rho U^+
                  P), channels by their Kraus operators' exact action on shifted views. Exact
                  expectations.
  trajectories    quantum-jump trajectories: pure kets, one Kraus operator drawn per channel
                  and trajectory with its probability. Unbiased: E[|psi><psi|] = rho exactly.
                  Expectation outputs are means over `noise.trajectories` trajectories per
                  sample, with their standard errors (`<output>_stderr`).

Sampled outputs always come from trajectories, one independent trajectory per shot, so shots
are independent draws from rho at pure-state memory. `noise.method: auto` takes the density
matrix for expectation outputs when one sample's density matrix fits the memory budget,
trajectories otherwise. The plan derives this once (`noise_plan`).

Detector imperfections act on photon-counting outcomes only: efficiency eta thins each
detected photon number binomially (exactly a LossChannel(eta) before the detector, since loss
commutes with photon counting), and dark counts add Poisson(nu) counts per mode and shot
(click probability 1 - e^-nu P(0)); a count is capped at cutoff - 1 (the detector's range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cvgen.conventions import complex_bytes

__all__ = [
    "DENSITY_STATE_COPIES",
    "METHODS",
    "NoisePlan",
    "density_bytes_per_sample",
    "noise_plan",
    "noise_report_lines",
    "path_amplitudes",
    "stderr_name",
]

METHODS = ("auto", "density_matrix", "trajectories")
# Density-matrix-sized arrays alive at once per sample in the density path: the state, a
# gate's output and the sector/shift temporaries (as the ket path's STATE_COPIES). Measured
# (tracemalloc peak over a batch, QNN with loss after every layer, complex64): per-mode 4.0-4.4
# (2-3 modes), total truncation 4.1-4.3 (2-4 modes, N = 8-20).
DENSITY_STATE_COPIES = 6


@dataclass(frozen=True)
class NoisePlan:
    """How a lossy circuit runs: the path for expectation outputs and why, trajectories per
    sample for them, shots for sampled outputs, and the detector model."""

    channels: bool  # the circuit applies channels (else only the detector model is noisy)
    method: str  # density_matrix or trajectories: the path of the expectation outputs
    reason: str
    trajectories: int  # per sample, for expectation outputs on the trajectory path
    efficiency: float  # detector efficiency (photon counting)
    dark_counts: float  # mean dark counts per mode and detection window (Poisson)

    @property
    def detector(self) -> bool:
        return self.efficiency != 1.0 or self.dark_counts != 0.0


def stderr_name(output: str) -> str:
    """The name of an expectation output's standard error on the trajectory path."""
    return f"{output}_stderr"


def density_bytes_per_sample(modes: int, cutoff: int, truncation: str, dtype: str) -> int:
    """Bytes of one sample's density matrix in the engine's dtype: the truncation's basis
    size squared (D^(2M) per mode, C(N + M - 1, M)^2 total)."""
    from cvgen.sizes import basis_size

    return basis_size(modes, cutoff, truncation) ** 2 * complex_bytes(dtype)


def path_amplitudes(noise: NoisePlan, modes: int, cutoff: int, truncation: str) -> int:
    """Amplitudes one sample's expectation path holds: the density matrix (basis size
    squared), the trajectories' kets otherwise (what the truncation check's batches are capped
    by)."""
    from cvgen.sizes import amplitudes_per_sample, basis_size

    if noise.method == "density_matrix":
        return basis_size(modes, cutoff, truncation) ** 2
    return noise.trajectories * amplitudes_per_sample(modes, cutoff)


def noise_plan(config: dict, circuit, channels: bool, budget_mb: int) -> NoisePlan | None:
    """The noise settings a config asks for (None: a pure circuit and ideal detectors).

    `channels`: whether the circuit applies channels. The density path is taken when asked for,
    or with `auto` when one sample's density matrix (DENSITY_STATE_COPIES copies) fits
    `budget_mb`, at the truncation check's higher cutoff too when the check runs.
    """
    from cvgen.errors import CvgenError

    noise = config.get("noise") or {}
    detector = config["sampling"].get("detector") or {}
    efficiency = float(detector.get("efficiency", 1.0))
    dark_counts = float(detector.get("dark_counts", 0.0))
    if not 0.0 <= efficiency <= 1.0:
        raise CvgenError(
            f"sampling.detector.efficiency {efficiency} is outside [0, 1]: give the probability "
            f"that the detector registers a photon"
        )
    if dark_counts < 0 or not math.isfinite(dark_counts):
        raise CvgenError(
            f"sampling.detector.dark_counts {dark_counts} must be a finite number >= 0 (mean "
            f"dark counts per mode and detection window)"
        )
    if not channels and efficiency == 1.0 and dark_counts == 0.0:
        return None
    method = noise.get("method", "auto")
    trajectories = int(noise.get("trajectories", 64))
    per_sample = DENSITY_STATE_COPIES * density_bytes_per_sample(
        circuit.modes, circuit.cutoff, circuit.truncation, circuit.dtype
    )
    fits = per_sample <= budget_mb * 2**20
    size = f"{per_sample / 2**20:.3g} MB per sample"
    check = config.get("convergence") or {}
    rerun_cutoff = circuit.cutoff + (check.get("extra_cutoff", 0) if check.get("fraction") else 0)
    rerun = DENSITY_STATE_COPIES * density_bytes_per_sample(
        circuit.modes, rerun_cutoff, circuit.truncation, circuit.dtype
    )
    if not channels:
        method, reason = "trajectories", "no channels: pure states, detector model only"
    elif method == "density_matrix":
        if not fits:
            raise CvgenError(
                f"noise.method density_matrix: one sample's density matrix ({circuit.modes} "
                f"modes, {circuit.truncation} truncation at cutoff {circuit.cutoff}, "
                f"{circuit.dtype}) needs about {size}, over memory_budget_mb {budget_mb}: use "
                f"noise.method: trajectories (pure-state memory), or lower circuit.cutoff, or "
                f"raise memory_budget_mb"
            )
        reason = f"set in the config ({size})"
    elif method == "trajectories":
        reason = f"set in the config ({trajectories} trajectories per sample)"
    elif fits and rerun <= budget_mb * 2**20:
        method, reason = "density_matrix", f"the density matrix fits the budget ({size})"
    elif fits:
        method = "trajectories"
        reason = (
            f"the truncation check's re-run at cutoff {rerun_cutoff} would need "
            f"{rerun / 2**20:.3g} MB per sample in density matrices, over memory_budget_mb "
            f"{budget_mb}"
        )
    else:
        method = "trajectories"
        reason = f"the density matrix would need {size}, over memory_budget_mb {budget_mb}"
    return NoisePlan(channels, method, reason, trajectories, efficiency, dark_counts)


def noise_report_lines(plan_values: dict) -> list[str]:
    """Markdown lines for a report's "Loss and noise" section, from a plan's JSON values
    (`DatasetPlan.to_json`): the channels, the path that ran and why, the detector model."""
    noise = plan_values.get("noise")
    if not noise:
        return []
    circuit = plan_values["circuit"]
    loss = (
        (plan_values["config"]["circuit"].get("loss") or {})
        if not circuit.get("blackbird_text")
        else {}
    )
    lines = ["## Loss and noise", ""]
    channels = [n for n in circuit["op_names"] if n in ("LossChannel", "ThermalLossChannel")]
    lines.append(f"- channels: {', '.join(channels) or 'none'}")
    if loss:
        lines.append(
            f"- QNN loss: per layer {loss.get('per_layer')}, before detection "
            f"{loss.get('before_detection')} (transmissivities; null: none)"
        )
    path = noise["method"].replace("_", " ")
    lines.append(f"- expectation outputs: {path} ({noise['reason']})")
    if noise["method"] == "trajectories" and noise["channels"]:
        lines.append(
            f"  means over {noise['trajectories']} quantum-jump trajectories per sample; each "
            f"output's standard error is stored as `<output>_stderr`"
        )
    if plan_values.get("sampling"):
        lines.append(
            "- sampled outputs: one independent quantum-jump trajectory per shot (shots are "
            "independent draws from rho); the exact summaries they are compared with are "
            "averages over the same trajectories"
        )
    lines.append(
        f"- detector: efficiency {noise['efficiency']}, dark counts {noise['dark_counts']} per "
        f"mode and window (photon counting)"
    )
    return lines + [""]

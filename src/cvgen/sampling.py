"""Measurement outcomes drawn from output kets: joint homodyne, heterodyne and photon-number
samples.

Expectation values are not samples. For each state this draws `shots` joint outcomes over all
modes, as detectors would give them, with the correlations between modes intact:

- homodyne: mode 0's outcome from its marginal density, then the state conditioned on it, then
  mode 1 from the conditioned state's marginal, and so on: the chain rule of the joint density.
  A marginal is p(x) = sum_{n,n'} c_n(x) rho_{nn'} conj(c_n'(x)), with c_n(x) = e^{-i n phi} <x|n>
  (Hermite functions) and rho the mode's reduced density matrix. An outcome's coarse grid bin
  is drawn from exact bin probabilities, its position inside the bin from the density's linear
  interpolation at fine grid points (continuous values, the inverse CDF solved exactly within
  each interval). Conditioning uses the Hermite functions at the drawn value itself.
  Memory per state: shots x D^(M-1) amplitudes and shots x grid densities, where SF's
  MeasureHomodyne holds D x D x 100000.
- heterodyne: a mode's outcome is the coherent-state label alpha, distributed as the Husimi Q
  function Q(alpha) = <alpha|rho|alpha> / pi, stored as the real pair (x, p) = (2 Re alpha,
  2 Im alpha) (hbar = 2, so <alpha|x|alpha> = 2 Re alpha): `heterodyne` is [samples, shots,
  modes, 2]. For a Gaussian state the pairs have means (<x>, <p>) and covariance sigma + I (the
  vacuum's covariance I added by the measurement). Modes are chained as for homodyne, the
  remaining modes conditioned on each drawn alpha by contracting the mode with
  <alpha|n> = e^{-|alpha|^2/2} conj(alpha)^n / sqrt(n!). Within a mode, alpha = r e^{i theta}:
  u = r^2 has the density e^{-u} sum_n rho_nn u^n / n!, a mixture of Gamma(n + 1) laws, whose
  survival function sum_j T_j e^{-u} u^j / j! (T_j = sum_{n >= j} rho_nn) is inverted by
  bisection; given r, theta has the density sum_{n,m} rho_nm r^(n+m) e^{i(m-n) theta} /
  sqrt(n! m!), a trigonometric polynomial whose CDF is integrated term by term and inverted by
  bisection. Both are exact to the output dtype's resolution, with no grid. Inverting the mixture
  takes one uniform number per coordinate (drawing n, then a Gamma(n + 1) variate as a sum of
  n + 1 exponentials, would take up to D + 1, and uniforms are drawn for SAMPLE_BLOCK samples
  at a time). r^n / sqrt(n!) is formed in logs and scaled by its largest value, so high cutoffs
  and large r do not overflow.
- fock_samples: joint photon numbers by inverting the cumulative distribution of |psi|^2 over
  all D^M basis states; threshold_samples (click = at least one photon) follow from them.

All three sample the truncated state renormalised (its norm is recorded separately). The uniform
random numbers come from streams keyed (seed, stream, block of samples; cvgen.streams), like
parameter drawing, so every outcome depends only on its sample's position in the dataset: not
on sharding, batching, the engine or the array namespace (numpy or TF, cvgen.engines.backend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cvgen.conventions import HBAR, SAMPLING_OUTPUTS, complex_bytes, real_dtype
from cvgen.engines.backend import NUMPY
from cvgen.streams import (
    DETECTOR_STREAM,
    FOCK_STREAM,
    HETERODYNE_STREAM,
    HOMODYNE_STREAM,
    SAMPLE_BLOCK,
    block_uniforms,
    row_uniforms,
)

SUBDIVISIONS = 16  # fine grid intervals per coarse bin
QUADRATURE_NODES = 24  # Gauss-Legendre nodes per coarse bin for the exact bin probabilities
INTERPOLATION_CHECKS = 8  # states per batch whose interpolation error is measured
TINY = float(np.finfo(np.float32).tiny)  # floor of a conditioned state's norm
# Heterodyne brackets span less than 2^6 (r below radius_bound, 37 at cutoff 1000; theta below
# 2 pi): this many halvings beyond the output dtype's mantissa leave them below its resolution.
BRACKET_BITS = 6
# Exact per-shard summaries of the sampled distributions, and how shards combine: "mean" summaries
# are stored as sums over the shard's samples and divided by the sample count when aggregated.
SUMMARIES = {
    "homodyne_density": "mean",  # [modes, grid] marginal density of the dataset's states
    "homodyne_pair_moment": "mean",  # E[x_0 x_1] of modes 0 and 1 (modes >= 2)
    "homodyne_mass_error": "max",  # |1 - grid integral / trace| of any marginal
    "homodyne_interpolation_error": "max",  # linear interpolation vs exact, midpoints, relative
    "fock_marginals": "mean",  # [modes, cutoff] photon-number distribution of each mode
    # [modes, 5] E[x_h], E[p_h], E[x_h^2], E[p_h^2], E[x_h p_h] of each mode's heterodyne pairs
    "heterodyne_moments": "mean",
    # engine gaussian: the largest P(N > sampling.max_photons) of any state (cvgen.gaussian)
    "photon_ceiling_mass": "max",
    "photon_means": "mean",  # engine gaussian: [modes] exact mean photon number of each mode
}


@dataclass(frozen=True)
class SamplingSpec:
    """What to sample and how: shots per state, quadrature angles per mode, the density grid."""

    outputs: tuple[str, ...]
    shots: int
    angles: tuple[float, ...]
    grid_start: float
    grid_step: float
    grid_points: int

    @property
    def homodyne(self) -> bool:
        return "homodyne" in self.outputs

    @property
    def heterodyne(self) -> bool:
        return "heterodyne" in self.outputs

    @property
    def fock(self) -> bool:
        return "fock_samples" in self.outputs or "threshold_samples" in self.outputs

    @property
    def bins(self) -> int:
        return (self.grid_points - 1) // SUBDIVISIONS

    def grid(self) -> np.ndarray:
        return self.grid_start + self.grid_step * np.arange(self.grid_points)


def sampling_spec(config: dict, modes: int) -> SamplingSpec | None:
    """The sampling a config asks for, or None when it requests no sampled output."""
    outputs = tuple(name for name in config["outputs"] if name in SAMPLING_OUTPUTS)
    if not outputs:
        return None
    sampling = config["sampling"]
    homodyne = sampling["homodyne"]
    half_width = homodyne["grid_range"] or default_grid_range(config["circuit"]["cutoff"])
    return make_spec(
        outputs,
        sampling["shots"],
        quadrature_angles(homodyne["quadratures"], modes),
        half_width,
        homodyne["grid_points"],
    )


def make_spec(outputs, shots: int, angles, half_width: float, points: int) -> SamplingSpec:
    """A spec whose grid on [-half_width, half_width] has at least `points` points, rounded up to
    whole coarse bins of SUBDIVISIONS intervals."""
    intervals = SUBDIVISIONS * max(1, math.ceil((points - 1) / SUBDIVISIONS))
    return SamplingSpec(
        outputs=tuple(outputs),
        shots=shots,
        angles=tuple(angles),
        grid_start=-half_width,
        grid_step=2 * half_width / intervals,
        grid_points=intervals + 1,
    )


def default_grid_range(cutoff: int) -> float:
    """Half-width beyond which every Fock state n < cutoff has negligible weight.

    <x|n> oscillates inside |x| < sqrt(hbar (2n + 1)) and decays like a Gaussian beyond; five
    more units of sqrt(hbar) leave less than 1e-10 of the probability outside.
    """
    return math.sqrt(HBAR) * (math.sqrt(2 * cutoff + 1) + 5)


def radius_bound(cutoff: int) -> float:
    """|alpha| beyond which every Fock state n < cutoff has less than 1e-18 of its Q function.

    For |n>, |alpha|^2 ~ Gamma(n + 1), so P(|alpha|^2 > n + t) = P(Poisson(n + t) <= n), which the
    Chernoff bound puts below e^{-t} (1 + t/n)^n: under e^{-50} for t = 10 sqrt(n) + 45 at every
    n (e^{-45} at n = 0), and the bound only falls as t grows.
    """
    return math.sqrt(cutoff + 10 * math.sqrt(cutoff) + 45)


def quadrature_angles(quadratures: list, modes: int) -> tuple[float, ...]:
    """Angle phi per mode from the config's entries (`x` = 0, `p` = pi/2, or phi itself)."""
    from cvgen.errors import CvgenError

    if len(quadratures) not in (1, modes):
        raise CvgenError(
            f"config key sampling.homodyne.quadratures has {len(quadratures)} entries for a "
            f"{modes}-mode circuit: give one for every mode, or a single one for all"
        )
    named = {"x": 0.0, "p": math.pi / 2}
    angles = [named[q] if isinstance(q, str) else float(q) for q in quadratures]
    return tuple(angles * modes if len(angles) == 1 else angles)


def hermite_functions(x: np.ndarray, cutoff: int) -> np.ndarray:
    """<x|n> for n < cutoff at every x (hbar = 2 units), [..., cutoff], by the stable recurrence."""
    xi = np.asarray(x, dtype=np.float64) / math.sqrt(HBAR)
    return np.stack(_hermite_recurrence(xi, cutoff, np.exp), axis=-1)


def _hermite_tensor(xp, x, cutoff: int):
    """hermite_functions in the namespace `xp`, for the outcomes drawn inside the kernel."""
    return xp.stack(_hermite_recurrence(x / math.sqrt(HBAR), cutoff, xp.exp), axis=-1)


def _hermite_recurrence(xi, cutoff: int, exp) -> list:
    """<x|n> for n < cutoff at xi = x / sqrt(hbar), in numpy or TF (whichever `exp` is)."""
    values = [exp(-(xi * xi) / 2) / (math.pi * HBAR) ** 0.25]
    if cutoff > 1:
        values.append(math.sqrt(2) * xi * values[0])
    for n in range(1, cutoff - 1):
        values.append(
            math.sqrt(2 / (n + 1)) * xi * values[n] - math.sqrt(n / (n + 1)) * values[n - 1]
        )
    return values


class Sampler:
    """Draws the configured outcomes for batches of kets in one kernel of the namespace `xp`:
    numpy for small states (no TF import), or TF traced once into a graph for large ones.

    A marginal density is sampled in two stages, so that each shot touches ~100 grid values
    instead of all of them: the bin among the grid's coarse bins (SUBDIVISIONS fine intervals
    each) from the exact bin probabilities (integrals of <x|n><x|n'> over each bin, tabulated once
    by Gauss-Legendre quadrature), then the position inside the bin from the density's linear
    interpolation at the bin's fine grid points, reusing the same uniform number rescaled to the
    bin (which is again uniform). Coarse bin probabilities are exact; only the shape within a
    bin is interpolated.
    """

    def __init__(
        self,
        spec: SamplingSpec,
        modes: int,
        cutoff: int,
        dtype: str,
        seed: int,
        xp=NUMPY,
        detector: tuple[float, float] = (1.0, 0.0),
    ):
        self.detector = detector  # (efficiency, mean dark counts) of the photon counters
        self.spec = spec
        self.modes = modes
        self.cutoff = cutoff
        self.seed = seed
        self.dtype = dtype
        self.real = real_dtype(dtype)
        self.xp = xp
        grid = spec.grid()
        midpoints = grid[:-1] + spec.grid_step / 2
        n = np.arange(cutoff)
        # <x|n> at the grid points [G, D]; products <x|n><x|n'> [D^2, G + G - 1] at the grid
        # and its midpoints; their integrals over each coarse bin [D^2, bins]; cos and sin of
        # (n - n') phi [M, D, D] for each mode's quadratic form, and e^{-i n phi} [M, D].
        hermite = hermite_functions(np.concatenate([grid, midpoints]), cutoff)
        self._hermite = xp.asarray(hermite[: len(grid)], self.real)
        products = hermite[:, :, None] * hermite[:, None, :]
        self._products = xp.asarray(products.reshape(len(hermite), -1).T, self.real)
        self._bin_integrals = xp.asarray(bin_integrals(spec, cutoff), self.real)
        turns = np.subtract.outer(n, n)[None] * np.array(spec.angles)[:, None, None]
        self._cosines = xp.asarray(np.cos(turns), self.real)
        self._sines = xp.asarray(np.sin(turns), self.real)
        self._mode_phases = xp.asarray(np.exp(-1j * np.outer(spec.angles, n)), dtype)
        # positions of a D x D matrix's diagonal in its flattened rows; of a bin's fine points
        self._diagonal = xp.asarray(n * (cutoff + 1), "int32")
        self._fine_points = xp.arange(0, SUBDIVISIONS + 1, "int32")
        # Heterodyne: photon numbers n and log n!, both [D]; tail sums T_j = sum_{n >= j} rho_nn
        # as a matrix [D, D]; the sums along a D x D matrix's diagonals m - n = k >= 0 [D^2, D];
        # the harmonics k >= 1 of the angle's Fourier series [D - 1].
        self._levels = xp.asarray(n, "float64")
        self._log_factorials = xp.asarray([math.lgamma(k + 1) for k in n], "float64")
        self._tails = xp.asarray(np.tril(np.ones((cutoff, cutoff))), "float64")
        diagonals = np.subtract.outer(n, n).T.reshape(-1, 1) == n  # [n * D + m, k]: m - n == k
        self._diagonals = xp.asarray(diagonals, "float64")
        self._harmonics = xp.asarray(n[1:], "float64")
        self._radius_bound = radius_bound(cutoff)
        self._bisections = np.finfo(self.real).nmant + BRACKET_BITS  # 29 for float32, 58 float64
        self._draw = xp.function(
            self._outcomes,
            [
                xp.spec([None] + [cutoff] * modes, dtype),
                xp.spec([None, spec.shots, modes], "float64"),
                xp.spec([None, spec.shots, modes, 2], "float64"),
                xp.spec([None, spec.shots], "float64"),
            ],
        )

    def sample(self, kets, start: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Outcomes of the kets (arrays of the sampler's namespace) of samples
        [start, start + len(kets)), and summary sums."""
        stop = start + int(kets.shape[0])
        shots, modes, spec = self.spec.shots, self.modes, self.spec
        arrays = self._draw(
            kets,
            self._uniforms(spec.homodyne, HOMODYNE_STREAM, start, stop, (shots, modes)),
            self._uniforms(spec.heterodyne, HETERODYNE_STREAM, start, stop, (shots, modes, 2)),
            self._uniforms(spec.fock, FOCK_STREAM, start, stop, (shots,)),
        )
        values = {name: self.xp.numpy(array) for name, array in arrays.items()}
        return self._finish(values, start, stop)

    def _finish(self, values: dict, start: int, stop: int):
        """The outputs and summaries from the kernel's arrays (numpy), the detector applied."""
        if "fock_samples" in values and self.detector != (1.0, 0.0):
            values["fock_samples"] = detected_counts(
                values["fock_samples"], *self.detector, self.seed, start, self.cutoff
            )
            values["fock_marginals"] = detected_marginals(
                values["fock_marginals"], *self.detector, self.cutoff
            )
        outputs = {}
        if self.spec.homodyne:
            outputs["homodyne"] = values["homodyne"]
        if self.spec.heterodyne:
            outputs["heterodyne"] = values["heterodyne"]
        if "fock_samples" in self.spec.outputs:
            outputs["fock_samples"] = values["fock_samples"].astype(fock_dtype(self.cutoff))
        if "threshold_samples" in self.spec.outputs:
            outputs["threshold_samples"] = (values["fock_samples"] > 0).astype(np.uint8)
        summaries = {name: values[name] for name in SUMMARIES if name in values}
        return outputs, summaries

    def _uniforms(self, used: bool, stream_number: int, start: int, stop: int, shape: tuple):
        """The stream's uniforms for samples [start, stop), or zeros where the kernel skips them."""
        if used:
            return block_uniforms(self.seed, stream_number, start, stop, shape)
        return np.zeros((stop - start, *shape))

    def _outcomes(self, kets, homodyne_uniforms, heterodyne_uniforms, fock_uniforms):
        result = {}
        if self.spec.homodyne:
            result["homodyne"] = self._homodyne(kets, homodyne_uniforms)
            result.update(self._homodyne_summaries(kets))
        if self.spec.heterodyne:
            result["heterodyne"] = self._heterodyne(kets, heterodyne_uniforms)
            result["heterodyne_moments"] = self._heterodyne_moments(kets)
        if self.spec.fock:
            result["fock_samples"], result["fock_marginals"] = self._fock(kets, fock_uniforms)
        return result

    def _homodyne(self, kets, uniforms):
        """Joint outcomes [B, shots, M]: each mode drawn given the outcomes of the modes before."""
        xp, cutoff, shots = self.xp, self.cutoff, self.spec.shots
        # [B, shots so far (1), D, rest]
        state = xp.reshape(kets, [-1, 1, cutoff, cutoff ** (self.modes - 1)])
        columns = []
        for mode in range(self.modes):
            rest = cutoff ** (self.modes - mode - 1)
            quadratic = self._quadratic_form(state, mode)  # [B, 1 or shots, D, D]
            if mode == 0:  # one density per state, shared by its shots
                outcome = self._draw_quadrature(quadratic[:, 0], uniforms[:, :, 0])
            else:
                flat = xp.reshape(quadratic, [-1, cutoff, cutoff])
                fractions = xp.reshape(uniforms[:, :, mode], [-1, 1])
                outcome = xp.reshape(self._draw_quadrature(flat, fractions), [-1, shots])
            columns.append(outcome)
            if rest > 1:
                hermite = _hermite_tensor(xp, xp.cast(outcome, self.real), cutoff)
                bras = xp.cast(hermite, self.dtype) * self._mode_phases[mode]  # <x_phi|n>
                state = self._condition(state, bras, rest)
        return xp.stack(columns, axis=2)

    def _quadratic_form(self, state, mode: int):
        """A = Re(e^{-i(n-n')phi} rho_nn') of states [..., D, rest]: p(x) = h(x)^T A h(x).

        Taken as Re(rho) cos((n-n')phi) + Im(rho) sin((n-n')phi): real arithmetic gives numpy a
        contiguous array for the matmuls that follow (np.real of a complex product is a strided
        view, which makes them ~3x slower).
        """
        xp = self.xp
        rho = state @ xp.adjoint(state)  # reduced density matrix [..., D, D]
        return xp.real(rho) * self._cosines[mode] + xp.imag(rho) * self._sines[mode]

    def _draw_quadrature(self, quadratic, uniforms):
        """Outcomes [N, K] from densities h^T A h of quadratic forms [N, D, D]; uniforms [N, K]."""
        xp, cutoff, fine = self.xp, self.cutoff, SUBDIVISIONS
        flat = xp.reshape(quadratic, [-1, cutoff * cutoff])
        masses = xp.maximum(xp.cast(flat @ self._bin_integrals, "float64"), 0.0)  # [N, bins]
        cumulative = xp.cumsum(masses, axis=1)
        target = uniforms * cumulative[:, -1:]
        bins = xp.minimum(xp.searchsorted(cumulative, target), self.spec.bins - 1)
        before = xp.take_along(cumulative - masses, bins, axis=-1)
        within = _divide_no_nan(xp, target - before, xp.take_along(masses, bins, axis=-1))
        fraction = xp.clip(within, 0.0, 1.0)
        points = bins[:, :, None] * fine + self._fine_points  # [N, K, fine + 1]
        hermite = xp.take(self._hermite, points, axis=0)  # [N, K, fine + 1, D]
        density = xp.sum((hermite @ quadratic[:, None]) * hermite, axis=-1)
        offset = _linear_inverse(xp, xp.cast(density, "float64"), fraction, self.spec.grid_step)
        start = self.spec.grid_start + self.spec.grid_step * fine * xp.cast(bins, "float64")
        return xp.cast(start + offset, self.real)

    def _condition(self, state, bras, rest: int):
        """Remaining modes' states [B, shots, D, rest/D], normalised, given each shot's outcome of
        the leading mode, whose bra in the Fock basis is `bras` [B, shots, D] (any scale)."""
        xp = self.xp
        projected = bras[:, :, None, :] @ state  # [B, shots, 1, rest]
        norm = xp.sqrt(xp.sum(_abs_square(xp, projected), axis=[2, 3], keepdims=True))
        projected = projected / xp.cast(xp.maximum(norm, TINY), self.dtype)
        return xp.reshape(projected, [-1, self.spec.shots, self.cutoff, rest // self.cutoff])

    def _homodyne_summaries(self, kets):
        """Per mode: the batch's summed marginal densities (exact, on the grid), the worst
        probability the grid misses, and the interpolation error on the first states; E[x0 x1]."""
        xp = self.xp
        cutoff, modes, points = self.cutoff, self.modes, self.spec.grid_points
        densities, mass_errors, interpolation_errors = [], [], []
        for mode in range(modes):
            order = [0, mode + 1] + [a for a in range(1, modes + 1) if a != mode + 1]
            state = xp.reshape(xp.transpose(kets, order), [-1, cutoff, cutoff ** (modes - 1)])
            # [B, D^2] flattened quadratic forms, trace = norm
            quadratic = xp.reshape(self._quadratic_form(state, mode), [-1, cutoff * cutoff])
            trace = xp.sum(xp.take(quadratic, self._diagonal, axis=1), axis=1, keepdims=True)
            flat = quadratic / trace
            inside = xp.sum(flat @ self._bin_integrals, axis=1)
            mass_errors.append(xp.max(xp.abs(1 - inside)))
            mixture = xp.sum(flat, axis=0, keepdims=True) @ self._products[:, :points]
            densities.append(mixture[0])
            values = flat[:INTERPOLATION_CHECKS] @ self._products  # grid, then midpoints
            grid, middle = values[:, :points], values[:, points:]
            linear = 0.5 * (grid[:, :-1] + grid[:, 1:])
            peak = xp.max(grid, axis=1, keepdims=True)
            interpolation_errors.append(xp.max(xp.abs(middle - linear) / peak))
        summaries = {
            "homodyne_density": xp.stack(densities),
            "homodyne_mass_error": xp.cast(xp.max(xp.stack(mass_errors)), self.real),
            "homodyne_interpolation_error": xp.max(xp.stack(interpolation_errors)),
        }
        if modes >= 2:
            summaries["homodyne_pair_moment"] = xp.sum(self._pair_moment(kets))
        return summaries

    def _pair_moment(self, kets):
        """<x_phi0 x_phi1> of modes 0 and 1 per state, normalised.

        With x_phi = a e^{-i phi} + a^dag e^{i phi} (hbar = 2):
        <x_phi0 x_phi1> = 2 Re(e^{-i(phi0 + phi1)} <a0 a1>) + 2 Re(e^{i(phi0 - phi1)} <a0^dag a1>).
        """
        xp, dtype = self.xp, self.dtype
        axes = list(range(1, len(xp.shape(kets))))
        lowered0, lowered1 = _lower(xp, kets, 0, dtype), _lower(xp, kets, 1, dtype)
        both = _lower(xp, lowered0, 1, dtype)
        norm = xp.sum(_abs_square(xp, kets), axis=axes)
        a0a1 = xp.sum(xp.conj(kets) * both, axis=axes)
        a0dag_a1 = xp.sum(xp.conj(lowered0) * lowered1, axis=axes)
        phi0, phi1 = self.spec.angles[0], self.spec.angles[1]
        sum_phase = xp.asarray(np.exp(-1j * (phi0 + phi1)), dtype)
        difference_phase = xp.asarray(np.exp(1j * (phi0 - phi1)), dtype)
        moment = 2 * xp.real(sum_phase * a0a1) + 2 * xp.real(difference_phase * a0dag_a1)
        return moment / norm

    def _heterodyne(self, kets, uniforms):
        """Joint outcomes [B, shots, M, 2]: each mode's alpha drawn given the alphas of the modes
        before, as (x, p) = sqrt(2 hbar) (Re alpha, Im alpha)."""
        xp, cutoff = self.xp, self.cutoff
        state = xp.reshape(kets, [-1, 1, cutoff, cutoff ** (self.modes - 1)])
        columns = []
        for mode in range(self.modes):
            rest = cutoff ** (self.modes - mode - 1)
            rho = state @ xp.adjoint(state)  # [B, 1 (mode 0: shared by the shots) or shots, D, D]
            radius = self._draw_radius(rho, uniforms[:, :, mode, 0])
            weights = self._radial_weights(radius)
            angle = self._draw_angle(rho, weights, uniforms[:, :, mode, 1])
            length = math.sqrt(2 * HBAR) * radius
            columns.append(xp.stack([length * xp.cos(angle), length * xp.sin(angle)], axis=-1))
            if rest > 1:
                turns = angle[..., None] * self._levels
                # <alpha|n> = e^{-r^2/2} r^n e^{-i n theta} / sqrt(n!), up to a positive factor
                bras = xp.complex(weights * xp.cos(turns), -weights * xp.sin(turns))
                state = self._condition(state, xp.cast(bras, self.dtype), rest)
        return xp.cast(xp.stack(columns, axis=2), self.real)

    def _draw_radius(self, rho, uniforms):
        """|alpha| [B, shots] for uniforms [B, shots], from density matrices [B, 1 or shots, D, D]:
        the r at which the radial survival function sum_j T_j e^{-r^2} r^(2j) / j! / T_0 (each
        term a Poisson probability, formed in logs) equals the uniform, found by bisection."""
        xp, log = self.xp, self.xp.math("log")
        diagonal = xp.real(
            xp.take(xp.reshape(rho, [-1, xp.shape(rho)[1], self.cutoff**2]), self._diagonal, axis=2)
        )
        tails = xp.cast(diagonal, "float64") @ self._tails  # T_j [B, 1 or shots, D]
        tails = _divide_no_nan(xp, tails, tails[..., :1])
        low, high = 0.0 * uniforms, 0.0 * uniforms + self._radius_bound
        for _ in range(self._bisections):
            middle = 0.5 * (low + high)  # > 0, so its log is finite
            exponents = 2 * log(middle)[..., None] * self._levels - self._log_factorials
            poisson = xp.exp(exponents - (middle * middle)[..., None])
            beyond = xp.sum(tails * poisson, axis=-1) > uniforms  # the root lies above middle
            low, high = xp.where(beyond, middle, low), xp.where(beyond, high, middle)
        return 0.5 * (low + high)

    def _radial_weights(self, radius):
        """r^n / sqrt(n!) [B, shots, D] divided by its largest entry, formed in logs so that
        neither r^n nor n! overflows."""
        xp = self.xp
        logs = xp.math("log")(radius)[..., None] * self._levels - 0.5 * self._log_factorials
        return xp.exp(logs - xp.max(logs, axis=-1, keepdims=True))

    def _draw_angle(self, rho, weights, uniforms):
        """theta [B, shots] in [0, 2 pi) given |alpha| (its `weights` [B, shots, D]), for uniforms
        [B, shots], from density matrices [B, 1 or shots, D, D].

        The density sum_{n,m} rho_nm w_n w_m e^{i(m-n) theta} is c_0 + 2 sum_{k>=1} Re(c_k
        e^{ik theta}) with c_k = a_k + i b_k = sum_n rho_{n,n+k} w_n w_{n+k}; its integral from 0
        is c_0 theta + 2 sum_k (a_k sin(k theta) + b_k (cos(k theta) - 1)) / k, inverted by
        bisection at the uniform times its total 2 pi c_0.
        """
        xp, cutoff, shots = self.xp, self.cutoff, self.spec.shots
        products = weights[..., :, None] * weights[..., None, :]  # [B, shots, D, D]
        flat = [-1, cutoff * cutoff]
        real = xp.reshape(xp.cast(xp.real(rho), "float64") * products, flat) @ self._diagonals
        imag = xp.reshape(xp.cast(xp.imag(rho), "float64") * products, flat) @ self._diagonals
        real, imag = xp.reshape(real, [-1, shots, cutoff]), xp.reshape(imag, [-1, shots, cutoff])
        constant = real[..., 0]
        sines, cosines = 2 * real[..., 1:] / self._harmonics, 2 * imag[..., 1:] / self._harmonics
        target = uniforms * (2 * math.pi) * constant
        low, high = 0.0 * uniforms, 0.0 * uniforms + 2 * math.pi
        for _ in range(self._bisections):
            middle = 0.5 * (low + high)
            turns = middle[..., None] * self._harmonics
            waves = sines * xp.sin(turns) + cosines * (xp.cos(turns) - 1)
            below = constant * middle + xp.sum(waves, axis=-1) < target  # the root lies above
            low, high = xp.where(below, middle, low), xp.where(below, high, middle)
        return 0.5 * (low + high)

    def _heterodyne_moments(self, kets):
        """Per mode [M, 5], summed over the batch: E[x_h], E[p_h], E[x_h^2], E[p_h^2], E[x_h p_h]
        of each normalised state, exactly.

        The Q function's moments are anti-normally ordered: E[alpha^k conj(alpha)^l] =
        <a^k a^dag^l>. With x_h = sqrt(hbar/2) (alpha + conj(alpha)) and p_h = -i sqrt(hbar/2)
        (alpha - conj(alpha)): E[x_h] = sqrt(2 hbar) Re<a> = <x>, E[p_h] = <p>,
        E[x_h^2] = hbar (Re<a^2> + <n> + 1) = <x^2> + hbar/2, E[p_h^2] = hbar (-Re<a^2> + <n> + 1)
        = <p^2> + hbar/2, E[x_h p_h] = hbar Im<a^2> = <(xp + px)/2>.
        """
        xp, dtype = self.xp, self.dtype
        axes = list(range(1, len(xp.shape(kets))))
        norm = xp.sum(_abs_square(xp, kets), axis=axes)
        per_mode = []
        for mode in range(self.modes):
            lowered = _lower(xp, kets, mode, dtype)
            twice = _lower(xp, lowered, mode, dtype)
            a = xp.sum(xp.conj(kets) * lowered, axis=axes) / xp.cast(norm, dtype)
            a2 = xp.sum(xp.conj(kets) * twice, axis=axes) / xp.cast(norm, dtype)
            photons = xp.sum(_abs_square(xp, lowered), axis=axes) / norm
            moments = [
                math.sqrt(2 * HBAR) * xp.real(a),
                math.sqrt(2 * HBAR) * xp.imag(a),
                HBAR * (xp.real(a2) + photons + 1),
                HBAR * (photons + 1 - xp.real(a2)),
                HBAR * xp.imag(a2),
            ]
            per_mode.append(xp.sum(xp.stack(moments, axis=1), axis=0))
        return xp.stack(per_mode)

    def _fock(self, kets, uniforms):
        """Joint photon numbers [B, shots, M] by inverse CDF over all D^M basis states, and the
        per-mode photon-number distributions summed over the batch [M, D]."""
        xp, cutoff, modes = self.xp, self.cutoff, self.modes
        probs = xp.cast(_abs_square(xp, kets), "float64")
        flat = xp.reshape(probs, [-1, cutoff**modes])
        cumulative = xp.cumsum(flat, axis=1)
        target = uniforms * cumulative[:, -1:]
        index = xp.minimum(xp.searchsorted(cumulative, target), cutoff**modes - 1)
        digits = [(index // cutoff ** (modes - 1 - m)) % cutoff for m in range(modes)]
        normalised = probs / xp.reshape(cumulative[:, -1], [-1] + [1] * modes)
        marginals = [
            xp.sum(normalised, axis=[a for a in range(modes + 1) if a != m + 1])
            for m in range(modes)
        ]
        return xp.stack(digits, axis=2), xp.stack(marginals)


class TrajectorySampler(Sampler):
    """Outcomes of a lossy circuit: one shot from each of a sample's `spec.shots` independent
    quantum-jump trajectories (cvgen.engines.noisy), so shots are independent draws from rho.

    The kets come sample-major ([B * shots, D, ..., D]); each is sampled once by the pure-state
    kernel, with the uniforms of its sample's position and shot (the same streams as for pure
    states). Summaries are each trajectory's exact distribution averaged over its sample's
    trajectories: an unbiased estimate of rho's, to compare the sampled outcomes with.
    """

    def __init__(
        self,
        spec: SamplingSpec,
        modes: int,
        cutoff: int,
        dtype: str,
        seed: int,
        xp=NUMPY,
        detector: tuple[float, float] = (1.0, 0.0),
    ):
        self.shots = spec.shots
        single = SamplingSpec(**{**spec.__dict__, "shots": 1})
        super().__init__(single, modes, cutoff, dtype, seed, xp, detector)

    def sample(self, kets, start: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        count = int(kets.shape[0]) // self.shots
        stop, shots, modes, spec = start + count, self.shots, self.modes, self.spec

        def uniforms(used: bool, stream_number: int, shape: tuple):
            values = self._uniforms(used, stream_number, start, stop, (shots, *shape))
            return values.reshape(count * shots, 1, *shape)

        arrays = self._draw(
            kets,
            uniforms(spec.homodyne, HOMODYNE_STREAM, (modes,)),
            uniforms(spec.heterodyne, HETERODYNE_STREAM, (modes, 2)),
            uniforms(spec.fock, FOCK_STREAM, ()),
        )
        values = {name: self.xp.numpy(array) for name, array in arrays.items()}
        for name in ("homodyne", "heterodyne", "fock_samples"):
            if name in values:
                values[name] = values[name].reshape(count, shots, *values[name].shape[2:])
        for name in values:
            if SUMMARIES.get(name) == "mean":
                values[name] = values[name] / shots
        return self._finish(values, start, stop)


def detected_counts(
    fock, efficiency: float, dark_counts: float, seed: int, start: int, cutoff: int
) -> np.ndarray:
    """Photon numbers [B, shots, M] as imperfect detectors report them: each thinned
    binomially by `efficiency` (a LossChannel before the detector), plus Poisson(dark_counts)
    dark counts, capped at cutoff - 1; uniforms keyed on the samples' positions."""
    count, shots, modes = fock.shape
    rows = np.arange(start, start + count)
    uniforms = row_uniforms(seed, DETECTOR_STREAM, rows, shots * modes * 2)
    uniforms = uniforms.reshape(count, shots, modes, 2)
    binomial = np.cumsum(_binomial_pmf(cutoff, efficiency), axis=1)  # [n, m]: P(<= m | n)
    detected = np.sum(binomial[fock.astype(np.int64)] < uniforms[..., :1], axis=-1)
    dark = np.sum(np.cumsum(_poisson_pmf(cutoff, dark_counts)) < uniforms[..., 1:], axis=-1)
    return np.minimum(detected + dark, cutoff - 1).astype(fock.dtype)


def detected_marginals(marginals, efficiency: float, dark_counts: float, cutoff: int):
    """Photon-number marginals [M, D] after the detector model of `detected_counts`."""
    thinned = marginals @ _binomial_pmf(cutoff, efficiency)
    poisson = _poisson_pmf(cutoff, dark_counts)
    out = np.zeros_like(thinned)
    for shift in range(cutoff):
        out[:, shift:] += poisson[shift] * thinned[:, : cutoff - shift]
    out[:, -1] += thinned.sum(axis=1) - out.sum(axis=1)  # counts above the cap
    return out


def _binomial_pmf(cutoff: int, efficiency: float) -> np.ndarray:
    """[n, m]: P(m of n photons detected) = C(n, m) eta^m (1 - eta)^(n - m)."""
    pmf = np.zeros((cutoff, cutoff))
    for n in range(cutoff):
        for m in range(n + 1):
            pmf[n, m] = math.comb(n, m) * efficiency**m * (1 - efficiency) ** (n - m)
    return pmf


def _poisson_pmf(cutoff: int, mean: float) -> np.ndarray:
    """P(j dark counts), j < cutoff."""
    return np.array([math.exp(-mean) * mean**j / math.factorial(j) for j in range(cutoff)])


def batch_bytes(spec: SamplingSpec, modes: int, cutoff: int, dtype: str, batch: int) -> int:
    """Bytes of the arrays the sampler holds at once for one batch (its memory estimate).

    Homodyne, per shot: the conditioned states (3 copies of D^(M-1)), reduced density matrices
    and quadratic forms (D x D), four float64 arrays over the coarse bins, and the Hermite
    functions and densities at one bin's fine points; per state: the kets transposed for each
    mode's summary. Heterodyne, per shot: the conditioned states (3 copies), the density matrix,
    three float64 D x D arrays (its real or imaginary part, the weight products, their product)
    and the bisections' [D] terms; per state: the kets lowered twice for the moments; and its
    uniforms, two blocks of SAMPLE_BLOCK samples whatever the batch (a block is drawn whole).
    Fock: four float64 copies of |psi|^2 per state.
    """
    amplitude = complex_bytes(dtype)
    total = 0
    if spec.homodyne:
        per_shot = (3 * cutoff ** (modes - 1) + 3 * cutoff**2) * amplitude
        per_shot += 4 * spec.bins * 8 + (SUBDIVISIONS + 1) * (2 * cutoff + 3) * 8
        total += batch * (spec.shots * per_shot + 2 * cutoff**modes * amplitude)
    if spec.heterodyne:
        per_shot = (3 * cutoff ** (modes - 1) + cutoff**2) * amplitude
        per_shot += 3 * cutoff**2 * 8 + 8 * cutoff * 8
        total += batch * (spec.shots * per_shot + 4 * cutoff**modes * amplitude)
        total += 2 * SAMPLE_BLOCK * spec.shots * modes * 2 * 8
    if spec.fock:
        total += batch * 4 * cutoff**modes * 8
    return total


def row_bytes(spec: SamplingSpec, modes: int, cutoff: int, dtype: str) -> int:
    """Bytes of one sample's sampled outputs."""
    widths = {
        "homodyne": complex_bytes(dtype) // 2,
        "heterodyne": complex_bytes(dtype),  # two reals per mode
        "fock_samples": np.dtype(fock_dtype(cutoff)).itemsize,
        "threshold_samples": 1,
    }
    return spec.shots * modes * sum(widths[name] for name in spec.outputs)


def summary_names(outputs: list[str], modes: int) -> list[str]:
    """The summaries a shard with these outputs carries."""
    names = []
    if "homodyne" in outputs:
        names += ["homodyne_density", "homodyne_mass_error", "homodyne_interpolation_error"]
        names += ["homodyne_pair_moment"] if modes >= 2 else []
    if "heterodyne" in outputs:
        names.append("heterodyne_moments")
    if "fock_samples" in outputs or "threshold_samples" in outputs:
        names.append("fock_marginals")
    return names


def combine_summaries(total: dict[str, np.ndarray], part: dict[str, np.ndarray]) -> dict:
    """Summaries of two disjoint sets of samples combined: sums added, maxima maximised."""
    combined = dict(total)
    for name, value in part.items():
        if name not in combined:
            combined[name] = np.asarray(value)
        elif SUMMARIES[name] == "max":
            combined[name] = np.maximum(combined[name], value)
        else:
            combined[name] = combined[name] + value
    return combined


def bin_integrals(spec: SamplingSpec, cutoff: int) -> np.ndarray:
    """Integrals of <x|n><x|n'> over each coarse bin of the grid [D^2, bins], by Gauss-Legendre
    quadrature exact for these smooth integrands (QUADRATURE_NODES nodes per bin)."""
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    width = spec.grid_step * SUBDIVISIONS
    left = spec.grid_start + width * np.arange(spec.bins)
    x = left[:, None] + width * (nodes + 1) / 2  # [bins, nodes]
    hermite = hermite_functions(x, cutoff)  # [bins, nodes, D]
    weighted = hermite * (weights * width / 2)[None, :, None]
    integrals = np.matmul(weighted.transpose(0, 2, 1), hermite)  # [bins, D, D]
    return integrals.reshape(spec.bins, -1).T


def _linear_inverse(xp, density, fraction, step: float):
    """Offset from a bin's start where the linear interpolation of `density` [N, K, F + 1]
    (values at F + 1 points `step` apart) reaches `fraction` [N, K] of its mass.

    Within an interval whose ends have densities f0, f1, the mass up to t is
    f0 t + (f1 - f0) t^2 / (2 step); the quadratic is solved in its stable form.
    """
    density = xp.maximum(density, 0.0)
    left, right = density[..., :-1], density[..., 1:]
    masses = 0.5 * step * (left + right)
    cumulative = xp.cumsum(masses, axis=-1)
    target = fraction[..., None] * cumulative[..., -1:]
    last = xp.shape(density)[-1] - 2
    interval = xp.minimum(xp.searchsorted(cumulative, target), last)  # [N, K, 1]
    before = xp.take_along(cumulative - masses, interval, axis=-1)[..., 0]
    f0 = xp.take_along(left, interval, axis=-1)[..., 0]
    f1 = xp.take_along(right, interval, axis=-1)[..., 0]
    mass = xp.maximum(target[..., 0] - before, 0.0)
    slope = (f1 - f0) / (2 * step)
    root = xp.sqrt(xp.maximum(f0 * f0 + 4 * slope * mass, 0.0))
    offset = xp.clip(_divide_no_nan(xp, 2 * mass, f0 + root), 0.0, step)
    return step * xp.cast(interval[..., 0], "float64") + offset


def _divide_no_nan(xp, numerator, denominator):
    """numerator / denominator, 0 where the denominator (>= 0 here) is 0: an empty bin or
    interval puts its outcome at its start."""
    positive = denominator > 0
    return xp.where(positive, numerator / xp.where(positive, denominator, 1.0), 0.0)


def _abs_square(xp, x):
    """|x|^2 as a real array."""
    magnitude = xp.abs(x)
    return magnitude * magnitude


def _lower(xp, kets, mode: int, dtype: str):
    """a_mode applied to every ket [B, D, ..., D] (the top Fock level maps to the one below)."""
    rank, cutoff = len(xp.shape(kets)), xp.shape(kets)[mode + 1]
    shape = [1] * rank
    shape[mode + 1] = cutoff - 1
    sqrt_n = np.sqrt(np.arange(1, cutoff, dtype=real_dtype(dtype))).reshape(shape)
    upper = xp.take(kets, xp.arange(1, cutoff, "int32"), axis=mode + 1) * xp.asarray(sqrt_n, dtype)
    padding = [[0, 0]] * rank
    padding[mode + 1] = [0, 1]
    return xp.pad(upper, padding)


def fock_dtype(cutoff: int):
    """The smallest unsigned integer type holding photon numbers below `cutoff`."""
    return np.uint8 if cutoff <= 256 else np.uint16

"""Measurement outcomes drawn from output kets: joint homodyne and photon-number samples.

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
- fock_samples: joint photon numbers by inverting the cumulative distribution of |psi|^2 over
  all D^M basis states; threshold_samples (click = at least one photon) follow from them.

Both sample the truncated state renormalised (its norm is recorded separately). The uniform
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
from cvgen.streams import FOCK_STREAM, HOMODYNE_STREAM, block_uniforms

SUBDIVISIONS = 16  # fine grid intervals per coarse bin
QUADRATURE_NODES = 24  # Gauss-Legendre nodes per coarse bin for the exact bin probabilities
INTERPOLATION_CHECKS = 8  # states per batch whose interpolation error is measured
TINY = float(np.finfo(np.float32).tiny)  # floor of a conditioned state's norm
# Exact per-shard summaries of the sampled distributions, and how shards combine: "mean" summaries
# are stored as sums over the shard's samples and divided by the sample count when aggregated.
SUMMARIES = {
    "homodyne_density": "mean",  # [modes, grid] marginal density of the dataset's states
    "homodyne_pair_moment": "mean",  # E[x_0 x_1] of modes 0 and 1 (modes >= 2)
    "homodyne_mass_error": "max",  # |1 - grid integral / trace| of any marginal
    "homodyne_interpolation_error": "max",  # linear interpolation vs exact, midpoints, relative
    "fock_marginals": "mean",  # [modes, cutoff] photon-number distribution of each mode
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
        self, spec: SamplingSpec, modes: int, cutoff: int, dtype: str, seed: int, xp=NUMPY
    ):
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
        self._draw = xp.function(
            self._outcomes,
            [
                xp.spec([None] + [cutoff] * modes, dtype),
                xp.spec([None, spec.shots, modes], "float64"),
                xp.spec([None, spec.shots], "float64"),
            ],
        )

    def sample(self, kets, start: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Outcomes of the kets (arrays of the sampler's namespace) of samples
        [start, start + len(kets)), and summary sums."""
        count = int(kets.shape[0])
        stop = start + count
        shots, modes = self.spec.shots, self.modes
        homodyne_u = (
            block_uniforms(self.seed, HOMODYNE_STREAM, start, stop, (shots, modes))
            if self.spec.homodyne
            else np.zeros((count, shots, modes))  # unused: the kernel skips them
        )
        fock_u = (
            block_uniforms(self.seed, FOCK_STREAM, start, stop, (shots,))
            if self.spec.fock
            else np.zeros((count, shots))
        )
        arrays = self._draw(kets, homodyne_u, fock_u)
        values = {name: self.xp.numpy(array) for name, array in arrays.items()}
        outputs = {}
        if self.spec.homodyne:
            outputs["homodyne"] = values["homodyne"]
        if "fock_samples" in self.spec.outputs:
            outputs["fock_samples"] = values["fock_samples"].astype(fock_dtype(self.cutoff))
        if "threshold_samples" in self.spec.outputs:
            outputs["threshold_samples"] = (values["fock_samples"] > 0).astype(np.uint8)
        summaries = {name: values[name] for name in SUMMARIES if name in values}
        return outputs, summaries

    def _outcomes(self, kets, homodyne_uniforms, fock_uniforms):
        result = {}
        if self.spec.homodyne:
            result["homodyne"] = self._homodyne(kets, homodyne_uniforms)
            result.update(self._homodyne_summaries(kets))
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
                state = self._condition(state, outcome, mode, rest)
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

    def _condition(self, state, outcome, mode: int, rest: int):
        """Remaining modes' states given `outcome` [B, shots], normalised: [B, shots, D, rest/D]."""
        xp = self.xp
        hermite = _hermite_tensor(xp, xp.cast(outcome, self.real), self.cutoff)  # [B, shots, D]
        coefficients = xp.cast(hermite, self.dtype) * self._mode_phases[mode]
        projected = coefficients[:, :, None, :] @ state  # [B, shots, 1, rest]
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


def batch_bytes(spec: SamplingSpec, modes: int, cutoff: int, dtype: str, batch: int) -> int:
    """Bytes of the arrays the sampler holds at once for one batch (its memory estimate).

    Homodyne, per shot: the conditioned states (3 copies of D^(M-1)), reduced density matrices
    and quadratic forms (D x D), four float64 arrays over the coarse bins, and the Hermite
    functions and densities at one bin's fine points; per state: the kets transposed for each
    mode's summary. Fock: four float64 copies of |psi|^2 per state.
    """
    amplitude = complex_bytes(dtype)
    total = 0
    if spec.homodyne:
        per_shot = (3 * cutoff ** (modes - 1) + 3 * cutoff**2) * amplitude
        per_shot += 4 * spec.bins * 8 + (SUBDIVISIONS + 1) * (2 * cutoff + 3) * 8
        total += batch * (spec.shots * per_shot + 2 * cutoff**modes * amplitude)
    if spec.fock:
        total += batch * 4 * cutoff**modes * 8
    return total


def row_bytes(spec: SamplingSpec, modes: int, cutoff: int, dtype: str) -> int:
    """Bytes of one sample's sampled outputs."""
    widths = {
        "homodyne": complex_bytes(dtype) // 2,
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

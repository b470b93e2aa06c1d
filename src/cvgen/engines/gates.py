"""Exact Fock-basis matrices of CV gates, vectorised over a leading batch axis, for any backend.

One small pure function per gate. `xp` is an array namespace (cvgen.engines.backend), `dtype`
the complex dtype's name. Every parameter is a real array of shape [K] (K = batch size, or 1 for
a parameter shared by the whole batch); every result has the leading K axis. Matrices hold the
exact matrix elements <m|U|n> for m, n < cutoff (as thewalrus computes them for SF), from
recurrences that only reference lower indices, so nothing is lost to truncation on the way.
Conventions are SF's (hbar = 2, cvgen.conventions):

  Dgate(r, phi)        exp(alpha a^+ - alpha^* a), alpha = r e^{i phi}
  Sgate(r, phi)        exp((z^* a^2 - z a^+^2) / 2), z = r e^{i phi}
  Rgate(theta)         exp(i theta n)              Kgate(kappa)   exp(i kappa n^2)
  CKgate(kappa)        exp(i kappa n1 n2)          Vgate(gamma)   exp(i gamma x^3 / (3 hbar))
  BSgate(theta, phi)   exp(theta (e^{i phi} a b^+ - e^{-i phi} a^+ b))
  MZgate(phi_in, phi_ex), any passive two-mode gate: given by its 2x2 unitary V, columns the
                       images of a^+ and b^+ (V a^+ V^+ = V00 a^+ + V10 b^+)
  S2gate(r, phi)       exp(z a^+ b^+ - z^* a b), z = r e^{i phi}

Single-mode matrices are [K, m, n]; two-mode ones [K, m1, m2, n1, n2]; diagonal gates return
their phases only ([K, n] or [K, n1, n2]).
"""

from __future__ import annotations

import math

from cvgen.conventions import HBAR, real_dtype

__all__ = [
    "beamsplitter",
    "cross_kerr_phases",
    "cubic_phase",
    "displacement",
    "kerr_phases",
    "mach_zehnder",
    "passive_two_mode",
    "rotation_phases",
    "squeezing",
    "two_mode_squeezing",
]


def displacement(xp, r, phi, cutoff: int, dtype: str):
    """Dgate: rows from sqrt(m) D[m, n] = alpha D[m-1, n] + sqrt(n) D[m-1, n-1]."""
    r, phi = _real(xp, r, dtype), _real(xp, phi, dtype)
    alpha = _c(xp, r, dtype) * _phase(xp, phi, dtype)
    first = [_c(xp, xp.exp(-0.5 * r * r), dtype)]
    for n in range(1, cutoff):
        first.append(-xp.conj(alpha) * first[-1] / math.sqrt(n))
    rows = [xp.stack(first, axis=1)]
    for m in range(1, cutoff):
        previous = rows[-1]
        rows.append((alpha[:, None] * previous + _raise(xp, previous, 1, dtype)) / math.sqrt(m))
    return xp.stack(rows, axis=1)


def squeezing(xp, r, phi, cutoff: int, dtype: str):
    """Sgate, column by column.

    sqrt(n) S[m, n] = sqrt(m) sech(r) S[m-1, n-1] + sqrt(n-1) e^{-i phi} tanh(r) S[m, n-2].
    """
    r, phi = _real(xp, r, dtype), _real(xp, phi, dtype)
    sech, tanh = _c(xp, 1 / xp.cosh(r), dtype), _c(xp, xp.tanh(r), dtype)
    phase = _phase(xp, phi, dtype)
    first = [xp.sqrt(sech), sech * 0]
    for m in range(2, cutoff):
        first.append(-phase * tanh * first[m - 2] * math.sqrt((m - 1) / m))
    columns = [xp.stack(first[:cutoff], axis=1)]
    for n in range(1, cutoff):
        column = sech[:, None] * _raise(xp, columns[n - 1], 1, dtype)
        if n >= 2:
            coefficient = xp.conj(phase) * tanh * math.sqrt(n - 1)
            column = column + coefficient[:, None] * columns[n - 2]
        columns.append(column / math.sqrt(n))
    return xp.stack(columns, axis=2)


def rotation_phases(xp, theta, cutoff: int, dtype: str):
    """Rgate: the diagonal exp(i theta n)."""
    n = xp.arange(0, cutoff, real_dtype(dtype))
    return _phase(xp, _real(xp, theta, dtype)[:, None] * n, dtype)


def kerr_phases(xp, kappa, cutoff: int, dtype: str):
    """Kgate: the diagonal exp(i kappa n^2)."""
    n = xp.arange(0, cutoff, real_dtype(dtype))
    return _phase(xp, _real(xp, kappa, dtype)[:, None] * n * n, dtype)


def cross_kerr_phases(xp, kappa, cutoff: int, dtype: str):
    """CKgate: the diagonal exp(i kappa n1 n2), as [K, n1, n2]."""
    n = xp.arange(0, cutoff, real_dtype(dtype))
    kappa = _real(xp, kappa, dtype)
    return _phase(xp, kappa[:, None, None] * n[:, None] * n[None, :], dtype)


def cubic_phase(xp, gamma, cutoff: int, dtype: str):
    """Vgate as SF builds it: exp(i gamma x^3 / (3 hbar)) of the truncated x, via eigh."""
    import numpy as np

    lowering = np.diag(np.sqrt(np.arange(1, cutoff)), 1)
    x = math.sqrt(HBAR / 2) * (lowering + lowering.T)
    cube = xp.asarray((x @ x @ x)[None], dtype)
    scale = _c(xp, _real(xp, gamma, dtype)[:, None, None] * (1 / (3 * HBAR)), dtype)
    eigenvalues, vectors = xp.eigh(scale * cube)
    phases = _phase(xp, xp.real(eigenvalues), dtype)
    return (vectors * phases[:, None, :]) @ xp.adjoint(vectors)


def beamsplitter(xp, theta, phi, cutoff: int, dtype: str):
    """BSgate: the passive gate V = [[t, -r^*], [r, t]], t = cos theta, r = e^{i phi} sin theta."""
    theta, phi = _real(xp, theta, dtype), _real(xp, phi, dtype)
    t = _c(xp, xp.cos(theta), dtype)
    r = _c(xp, xp.sin(theta), dtype) * _phase(xp, phi, dtype)
    return passive_two_mode(xp, t, -xp.conj(r), r, t, cutoff, dtype)


def mach_zehnder(xp, phi_in, phi_ex, cutoff: int, dtype: str):
    """MZgate(phi_in, phi_ex) = BS(pi/4, pi/2) R(phi_in) BS(pi/4, pi/2) R(phi_ex), exactly."""
    inner = _phase(xp, _real(xp, phi_in, dtype), dtype)
    outer = _phase(xp, _real(xp, phi_ex, dtype), dtype)
    half_i = xp.asarray(0.5j, dtype)
    return passive_two_mode(
        xp,
        0.5 * (inner - 1) * outer,
        half_i * (1 + inner),
        half_i * (1 + inner) * outer,
        0.5 * (1 - inner),
        cutoff,
        dtype,
    )


def passive_two_mode(xp, v00, v01, v10, v11, cutoff: int, dtype: str):
    """Exact matrix of the passive two-mode gate whose creation operators transform by V.

    Column by column:
    U|n1, n2> = (V00 a^+ + V10 b^+)^n1 (V01 a^+ + V11 b^+)^n2 |0,0> / sqrt(n1! n2!).
    """
    k = xp.shape(v00)[0]
    vacuum = xp.unit(cutoff * cutoff, k, dtype)
    images = [xp.reshape(vacuum, [k, cutoff, cutoff])]
    for n1 in range(1, cutoff):
        previous = images[-1]
        image = _times(xp, v00, _raise(xp, previous, 1, dtype)) + _times(
            xp, v10, _raise(xp, previous, 2, dtype)
        )
        images.append(image / math.sqrt(n1))
    columns = [xp.stack(images, axis=3)]  # [K, m1, m2, n1]
    for n2 in range(1, cutoff):
        previous = columns[-1]
        column = _times(xp, v01, _raise(xp, previous, 1, dtype)) + _times(
            xp, v11, _raise(xp, previous, 2, dtype)
        )
        columns.append(column / math.sqrt(n2))
    return xp.stack(columns, axis=4)


def two_mode_squeezing(xp, r, phi, cutoff: int, dtype: str):
    """S2gate, row by row in n1.

    sqrt(n1) T[m1,m2,n1,n2] = sqrt(m1) sech(r) T[m1-1,m2,n1-1,n2]
                              - sqrt(n2) e^{-i phi} tanh(r) T[m1,m2,n1-1,n2-1].
    """
    r, phi = _real(xp, r, dtype), _real(xp, phi, dtype)
    sech, tanh = _c(xp, 1 / xp.cosh(r), dtype), _c(xp, xp.tanh(r), dtype)
    coupling = -xp.conj(_phase(xp, phi, dtype)) * tanh
    # n1 = 0 column: the two-mode squeezed vacuum sech sum (e^{i phi} tanh)^n |n, n>, then b^+
    # raised: T[m1,m2,0,n2] from T[m1,m2-1,0,n2-1].
    ratio = _phase(xp, phi, dtype) * tanh
    powers = [sech]
    for _ in range(1, cutoff):
        powers.append(powers[-1] * ratio)
    vacuum_image = xp.diag_embed(xp.stack(powers, axis=1))  # [K, m1, m2]
    zero_column = [vacuum_image]
    for n2 in range(1, cutoff):
        raised = _times(xp, sech, _raise(xp, zero_column[-1], 2, dtype))
        zero_column.append(raised / math.sqrt(n2))
    rows = [xp.stack(zero_column, axis=3)]  # n1 = 0: [K, m1, m2, n2]
    sqrt_n2 = xp.asarray([math.sqrt(n) for n in range(cutoff)], dtype)
    for n1 in range(1, cutoff):
        previous = rows[-1]
        shifted = xp.pad(previous[..., :-1], [[0, 0], [0, 0], [0, 0], [1, 0]])  # n2 - 1
        row = _times(xp, sech, _raise(xp, previous, 1, dtype)) + _times(
            xp, coupling, shifted * sqrt_n2
        )
        rows.append(row / math.sqrt(n1))
    return xp.stack(rows, axis=3)  # [K, m1, m2, n1, n2]


def _raise(xp, x, axis: int, dtype: str):
    """a^+ along `axis`: y[.., m, ..] = sqrt(m) x[.., m-1, ..], zero at m = 0."""
    shape = xp.shape(x)
    size, rank = shape[axis], len(shape)
    broadcast = [1] * rank
    broadcast[axis] = size - 1
    sqrt_m = xp.reshape(xp.asarray([math.sqrt(m) for m in range(1, size)], dtype), broadcast)
    lower = x[(slice(None),) * axis + (slice(0, size - 1),)] * sqrt_m
    zero = xp.zeros([*shape[:axis], 1, *shape[axis + 1 :]], dtype)
    return xp.concat([zero, lower], axis=axis)


def _times(xp, coefficient, x):
    """Per-batch-element coefficient [K] times an array [K, ...]."""
    return xp.reshape(coefficient, [-1] + [1] * (len(xp.shape(x)) - 1)) * x


def _real(xp, x, dtype: str):
    return xp.cast(x, real_dtype(dtype))


def _c(xp, x, dtype: str):
    """A real array as complex (Python numbers never pass through float32)."""
    return xp.cast(x, dtype)


def _phase(xp, angle, dtype: str):
    """exp(i angle) for a real angle."""
    angle = _real(xp, angle, dtype)
    return xp.complex(xp.cos(angle), xp.sin(angle))

"""Exact Fock-basis matrices of CV gates, built with vectorised TF ops over a leading batch axis.

One small pure function per gate. Every parameter is a real tensor of shape [K] (K = batch size,
or 1 for a parameter shared by the whole batch); every result has the leading K axis. Matrices
hold the exact matrix elements <m|U|n> for m, n < cutoff (as thewalrus computes them for SF),
from recurrences that only reference lower indices, so nothing is lost to truncation on the way.
Conventions are SF's (hbar = 2):

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

import tensorflow as tf


def displacement(r, phi, cutoff: int, dtype) -> tf.Tensor:
    """Dgate: rows from sqrt(m) D[m, n] = alpha D[m-1, n] + sqrt(n) D[m-1, n-1]."""
    r, phi = _real(r, dtype), _real(phi, dtype)
    alpha = _c(r, dtype) * _phase(phi, dtype)
    first = [_c(tf.exp(-0.5 * r * r), dtype)]
    for n in range(1, cutoff):
        first.append(-tf.math.conj(alpha) * first[-1] / _c(n**0.5, dtype))
    rows = [tf.stack(first, axis=1)]
    for m in range(1, cutoff):
        previous = rows[-1]
        rows.append((alpha[:, None] * previous + _raise(previous, 1, dtype)) / _c(m**0.5, dtype))
    return tf.stack(rows, axis=1)


def squeezing(r, phi, cutoff: int, dtype) -> tf.Tensor:
    """Sgate, column by column.

    sqrt(n) S[m, n] = sqrt(m) sech(r) S[m-1, n-1] + sqrt(n-1) e^{-i phi} tanh(r) S[m, n-2].
    """
    r, phi = _real(r, dtype), _real(phi, dtype)
    sech, tanh = _c(1 / tf.cosh(r), dtype), _c(tf.tanh(r), dtype)
    phase = _phase(phi, dtype)
    first = [tf.sqrt(sech), tf.zeros_like(sech)]
    for m in range(2, cutoff):
        first.append(-phase * tanh * first[m - 2] * _c(((m - 1) / m) ** 0.5, dtype))
    columns = [tf.stack(first[:cutoff], axis=1)]
    for n in range(1, cutoff):
        column = sech[:, None] * _raise(columns[n - 1], 1, dtype)
        if n >= 2:
            coefficient = tf.math.conj(phase) * tanh * _c((n - 1) ** 0.5, dtype)
            column += coefficient[:, None] * columns[n - 2]
        columns.append(column / _c(n**0.5, dtype))
    return tf.stack(columns, axis=2)


def rotation_phases(theta, cutoff: int, dtype) -> tf.Tensor:
    """Rgate: the diagonal exp(i theta n)."""
    n = tf.range(cutoff, dtype=dtype.real_dtype)
    return _phase(_real(theta, dtype)[:, None] * n, dtype)


def kerr_phases(kappa, cutoff: int, dtype) -> tf.Tensor:
    """Kgate: the diagonal exp(i kappa n^2)."""
    n = tf.range(cutoff, dtype=dtype.real_dtype)
    return _phase(_real(kappa, dtype)[:, None] * n * n, dtype)


def cross_kerr_phases(kappa, cutoff: int, dtype) -> tf.Tensor:
    """CKgate: the diagonal exp(i kappa n1 n2), as [K, n1, n2]."""
    n = tf.range(cutoff, dtype=dtype.real_dtype)
    return _phase(_real(kappa, dtype)[:, None, None] * n[:, None] * n[None, :], dtype)


def cubic_phase(gamma, cutoff: int, dtype, hbar: float = 2.0) -> tf.Tensor:
    """Vgate as SF builds it: exp(i gamma x^3 / (3 hbar)) of the truncated x, via eigh."""
    sqrt_n = tf.sqrt(tf.range(1, cutoff, dtype=dtype.real_dtype))
    lowering = tf.linalg.diag(sqrt_n, k=1)
    x = _c((hbar / 2) ** 0.5 * (lowering + tf.transpose(lowering)), dtype)
    generator = _c(_real(gamma, dtype)[:, None, None] / (3 * hbar), dtype) * (x @ x @ x)[None]
    eigenvalues, vectors = tf.linalg.eigh(generator)
    phases = _phase(tf.math.real(eigenvalues), dtype)
    return (vectors * phases[:, None, :]) @ tf.linalg.adjoint(vectors)


def beamsplitter(theta, phi, cutoff: int, dtype) -> tf.Tensor:
    """BSgate: the passive gate V = [[t, -r^*], [r, t]], t = cos theta, r = e^{i phi} sin theta."""
    theta, phi = _real(theta, dtype), _real(phi, dtype)
    t, r = _c(tf.cos(theta), dtype), _c(tf.sin(theta), dtype) * _phase(phi, dtype)
    return passive_two_mode(t, -tf.math.conj(r), r, t, cutoff, dtype)


def mach_zehnder(phi_in, phi_ex, cutoff: int, dtype) -> tf.Tensor:
    """MZgate(phi_in, phi_ex) = BS(pi/4, pi/2) R(phi_in) BS(pi/4, pi/2) R(phi_ex), exactly."""
    inner = _phase(_real(phi_in, dtype), dtype)
    outer = _phase(_real(phi_ex, dtype), dtype)
    half, half_i = _c(0.5, dtype), _c(0.5j, dtype)
    return passive_two_mode(
        half * (inner - 1) * outer,
        half_i * (1 + inner),
        half_i * (1 + inner) * outer,
        half * (1 - inner),
        cutoff,
        dtype,
    )


def passive_two_mode(v00, v01, v10, v11, cutoff: int, dtype) -> tf.Tensor:
    """Exact matrix of the passive two-mode gate whose creation operators transform by V.

    Column by column:
    U|n1, n2> = (V00 a^+ + V10 b^+)^n1 (V01 a^+ + V11 b^+)^n2 |0,0> / sqrt(n1! n2!).
    """
    k = tf.shape(v00)[0]
    vacuum = tf.one_hot(tf.zeros([k], tf.int32), cutoff * cutoff, dtype=dtype)
    images = [tf.reshape(vacuum, [k, cutoff, cutoff])]
    for n1 in range(1, cutoff):
        previous = images[-1]
        image = _times(v00, _raise(previous, 1, dtype)) + _times(v10, _raise(previous, 2, dtype))
        images.append(image / _c(n1**0.5, dtype))
    columns = [tf.stack(images, axis=3)]  # [K, m1, m2, n1]
    for n2 in range(1, cutoff):
        previous = columns[-1]
        column = _times(v01, _raise(previous, 1, dtype)) + _times(v11, _raise(previous, 2, dtype))
        columns.append(column / _c(n2**0.5, dtype))
    return tf.stack(columns, axis=4)


def two_mode_squeezing(r, phi, cutoff: int, dtype) -> tf.Tensor:
    """S2gate, row by row in n1.

    sqrt(n1) T[m1,m2,n1,n2] = sqrt(m1) sech(r) T[m1-1,m2,n1-1,n2]
                              - sqrt(n2) e^{-i phi} tanh(r) T[m1,m2,n1-1,n2-1].
    """
    r, phi = _real(r, dtype), _real(phi, dtype)
    sech, tanh = _c(1 / tf.cosh(r), dtype), _c(tf.tanh(r), dtype)
    coupling = -tf.math.conj(_phase(phi, dtype)) * tanh
    # n1 = 0 column: the two-mode squeezed vacuum sech sum (e^{i phi} tanh)^n |n, n>, then b^+
    # raised: T[m1,m2,0,n2] from T[m1,m2-1,0,n2-1].
    ratio = _phase(phi, dtype) * tanh
    diagonal = tf.stack([sech * ratio**n for n in range(cutoff)], axis=1)
    vacuum_image = tf.linalg.diag(diagonal)  # [K, m1, m2]
    zero_column = [vacuum_image]
    for n2 in range(1, cutoff):
        raised = _times(sech, _raise(zero_column[-1], 2, dtype))
        zero_column.append(raised / _c(n2**0.5, dtype))
    rows = [tf.stack(zero_column, axis=3)]  # n1 = 0: [K, m1, m2, n2]
    for n1 in range(1, cutoff):
        previous = rows[-1]
        shifted = tf.pad(previous[..., :-1], [[0, 0], [0, 0], [0, 0], [1, 0]])  # n2 - 1
        sqrt_n2 = _c(tf.sqrt(tf.range(cutoff, dtype=dtype.real_dtype)), dtype)
        row = _times(sech, _raise(previous, 1, dtype)) + _times(coupling, shifted * sqrt_n2)
        rows.append(row / _c(n1**0.5, dtype))
    return tf.stack(rows, axis=3)  # [K, m1, m2, n1, n2]


def _raise(x: tf.Tensor, axis: int, dtype) -> tf.Tensor:
    """a^+ along `axis`: y[.., m, ..] = sqrt(m) x[.., m-1, ..], zero at m = 0."""
    size = x.shape[axis]
    shape = [1] * x.shape.rank
    shape[axis] = size - 1
    sqrt_m = tf.reshape(_c(tf.sqrt(tf.range(1, size, dtype=dtype.real_dtype)), dtype), shape)
    lower = tf.gather(x, tf.range(size - 1), axis=axis) * sqrt_m
    paddings = [[0, 0]] * x.shape.rank
    paddings[axis] = [1, 0]
    return tf.pad(lower, paddings)


def _times(coefficient: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Per-batch-element coefficient [K] times a tensor [K, ...]."""
    return tf.reshape(coefficient, [-1] + [1] * (x.shape.rank - 1)) * x


def _real(x, dtype) -> tf.Tensor:
    return tf.cast(x, dtype.real_dtype)


def _c(x, dtype) -> tf.Tensor:
    """x as a complex tensor; Python numbers directly (tf.cast would round them via float32)."""
    return tf.cast(x, dtype) if tf.is_tensor(x) else tf.constant(x, dtype)


def _phase(angle, dtype) -> tf.Tensor:
    """exp(i angle) for a real angle."""
    angle = _real(angle, dtype)
    return tf.complex(tf.cos(angle), tf.sin(angle))

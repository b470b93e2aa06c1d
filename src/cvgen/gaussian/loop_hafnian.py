r"""Loop hafnians of matrices with repeated rows, by the finite-difference sieve over paired rows.

For a complex symmetric B [K, K] (couplings) and loop weights gamma [K], the loop hafnian of the
pattern n (row i repeated n_i times; N = sum n_i) is

    lhaf_n(B, gamma) = d^n/dz^n exp(z^T B z / 2 + gamma^T z) at z = 0,

the sum over perfect matchings with self-loops of the expanded N x N matrix. A pure Gaussian
state's photon-number amplitudes are <n|psi> = <0|psi> lhaf_n(B, gamma) / sqrt(n!)
(Hamilton et al., PRL 119, 170501 (2017); Quesada, PRA 100, 032326 (2019)).

Sieve (Bulmer et al., arXiv:2108.01622, Sec. III; Kan, J. Multivariate Anal. 99, 542 (2008)):
split the N vertices into P distinct pairs (a_p, b_p), pair p repeated r_p times (an odd vertex
pairs with a virtual vertex of loop weight 1 and no couplings, which leaves lhaf unchanged). With
the 2P endpoints' couplings A = B[e, e], loops D = gamma[e], X the swap of the two endpoints of
every pair and W = diag(w, w) a weight per pair, a Gaussian integral gives the generating function

    G(w) = sum_r lhaf_r(A, D) w^r / r! = det(I - A W X)^(-1/2) exp(D^T W X (I - A W X)^(-1) D / 2)
    log G(lambda w) = sum_j lambda^j [ tr((A W X)^j) / (2 j) + D^T W X (A W X)^(j-1) D / 2 ].

Its degree-n part G_n (n = sum_p r_p) is a homogeneous polynomial of degree n in w, and the
mixed forward difference of order r of such a polynomial is r! times its w^r coefficient, at any
base point; at base -r/2 (Glynn's symmetric form, better conditioned):

    lhaf_r = 2^(-n) sum_{0 <= k <= r} (-1)^(n - |k|) prod_p C(r_p, k_p) G_n(delta),
    delta = 2 k - r,

where G_n(delta) = [lambda^n] exp(log G(lambda delta)) costs O(n) matrix-vector products and
the power traces. k -> r - k maps delta to -delta and gives the same term, so half the points of
the first pair suffice. Cost: prod_p (r_p + 1) / 2 points, so it grows with the number of
photons (and falls with repetitions), not with the number of modes.

For sampling one more mode k, the loop weights of the fixed rows are gamma + t B[:, k] and the
loop hafnian is wanted as a polynomial L(t) in t (degree <= N): the loop term of log G is then
quadratic in t, each [lambda^j] coefficient is a quadratic polynomial P_j(t), and
E_m(t) = [lambda^m] exp(sum_j lambda^j P_j(t)) follows from m E_m = sum_j j P_j E_{m-j}.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "loop_hafnian",
    "loop_hafnian_polynomial",
    "pair_rows",
    "point_polynomial",
    "point_traces",
    "sieve_points",
    "VIRTUAL",
]

VIRTUAL = -1  # the pairing partner of an odd vertex: loop weight 1, no couplings


@numba.njit(cache=True)
def pair_rows(rows, counts):
    """Pair the N = sum(counts) vertices (row rows[i] repeated counts[i] times) into pairs
    (a_p, b_p) repeated r_p times, greedily making few, heavily repeated pairs (the sieve's cost
    is prod (r_p + 1)): the largest count is paired with itself while it exceeds twice the
    second largest, else with the second largest; a last odd vertex pairs with VIRTUAL."""
    left = counts.copy()
    total = left.sum()
    first = np.empty(total, np.int64)
    second = np.empty(total, np.int64)
    reps = np.empty(total, np.int64)
    pairs = 0
    while True:
        top, runner = -1, -1
        for i in range(len(left)):
            if left[i] == 0:
                continue
            if top < 0 or left[i] > left[top]:
                runner, top = top, i
            elif runner < 0 or left[i] > left[runner]:
                runner = i
        if top < 0:
            break
        first[pairs] = rows[top]
        if runner < 0 or left[top] > 2 * left[runner]:
            if left[top] >= 2:
                second[pairs] = rows[top]
                reps[pairs] = left[top] // 2
                left[top] -= 2 * reps[pairs]
            else:
                second[pairs] = VIRTUAL
                reps[pairs] = 1
                left[top] = 0
        else:
            second[pairs] = rows[runner]
            reps[pairs] = left[runner]
            left[top] -= left[runner]
            left[runner] = 0
        pairs += 1
    return first[:pairs], second[:pairs], reps[:pairs]


@numba.njit(cache=True)
def sieve_points(reps):
    """The sieve's points delta = 2 k - r [count, P] and weights [count]
    2^(-n) (-1)^(n - |k|) prod_p C(r_p, k_p), halved by the delta -> -delta symmetry on pair 0."""
    pairs = len(reps)
    n = reps.sum()
    count = reps[0] // 2 + 1
    for p in range(1, pairs):
        count *= reps[p] + 1
    deltas = np.empty((count, pairs), np.int64)
    weights = np.empty(count)
    k = np.zeros(pairs, np.int64)
    for point in range(count):
        weight = 0.5**n
        kept = 0
        for p in range(pairs):
            deltas[point, p] = 2 * k[p] - reps[p]
            kept += k[p]
            binomial = 1.0
            for i in range(k[p]):
                binomial = binomial * (reps[p] - i) / (i + 1)
            weight *= binomial
        if 2 * k[0] < reps[0]:
            weight *= 2.0
        weights[point] = -weight if (n - kept) % 2 else weight
        for p in range(pairs):  # next k, mixed radix, pair 0 only up to r_0 // 2
            k[p] += 1
            if k[p] <= (reps[0] // 2 if p == 0 else reps[p]):
                break
            k[p] = 0
    return deltas, weights


@numba.njit(cache=True)
def point_matrix(B, first, second, delta):
    """A W X on the endpoints of the pairs with delta != 0 (the others drop out), its endpoints
    [d] and their deltas [d]: (A W X)[i, j] = A[i, swap(j)] delta(j)."""
    kept = 0
    for p in range(len(delta)):
        if delta[p] != 0:
            kept += 1
    d = 2 * kept
    ends = np.empty(d, np.int64)
    weight = np.empty(d)
    i = 0
    for p in range(len(delta)):
        if delta[p] != 0:
            ends[i], ends[i + kept] = first[p], second[p]
            weight[i] = weight[i + kept] = delta[p]
            i += 1
    matrix = np.zeros((d, d), np.complex128)
    for i in range(d):
        if ends[i] == VIRTUAL:
            continue
        for j in range(d):
            partner = ends[(j + kept) % d]
            if partner != VIRTUAL:
                matrix[i, j] = B[ends[i], partner] * weight[j]
    return matrix, ends, weight


@numba.njit(cache=True)
def point_traces(matrix, n):
    """tr(matrix^j) for j = 1..n ([n + 1], index 0 unused), from the powers up to ceil(n / 2):
    tr(M^(a + b)) = sum_il (M^a)_il (M^b)_li."""
    d = matrix.shape[0]
    half = (n + 1) // 2
    powers = np.empty((half + 1, d, d), np.complex128)
    powers[0] = np.eye(d)
    for a in range(1, half + 1):
        powers[a] = powers[a - 1] @ matrix
    traces = np.zeros(n + 1, np.complex128)
    for j in range(1, n + 1):
        a, b = (j + 1) // 2, j // 2
        total = 0j
        for i in range(d):
            for m in range(d):
                total += powers[a, i, m] * powers[b, m, i]
        traces[j] = total
    return traces


@numba.njit(cache=True)
def point_polynomial(matrix, ends, weight, traces, gamma, coupling, n, degree):
    """E_n(t) = [lambda^n] exp(log G(lambda delta)) at one sieve point, with loop weights
    gamma + t coupling, as coefficients of t^0..t^degree."""
    d = matrix.shape[0]
    kept = d // 2
    loops = np.empty(d, np.complex128)
    links = np.empty(d, np.complex128)
    for i in range(d):
        virtual = ends[i] == VIRTUAL
        loops[i] = 1.0 if virtual else gamma[ends[i]]
        links[i] = 0.0 if virtual else coupling[ends[i]]
    swapped_loops = np.empty(d, np.complex128)  # W X loops
    swapped_links = np.empty(d, np.complex128)
    for i in range(d):
        swapped_loops[i] = weight[i] * loops[(i + kept) % d]
        swapped_links[i] = weight[i] * links[(i + kept) % d]
    terms = np.zeros((n + 1, 3), np.complex128)  # P_j(t) = terms[j, 0] + terms[j, 1] t + ...
    u, y = loops, links
    for j in range(1, n + 1):
        terms[j, 0] = traces[j] / (2 * j) + 0.5 * np.dot(swapped_loops, u)
        terms[j, 1] = np.dot(swapped_links, u)
        terms[j, 2] = 0.5 * np.dot(swapped_links, y)
        if j < n:
            u, y = matrix @ u, matrix @ y
    series = np.zeros((n + 1, degree + 1), np.complex128)
    series[0, 0] = 1.0
    for m in range(1, n + 1):
        for j in range(1, m + 1):
            previous = series[m - j]
            for power in range(3):
                factor = j * terms[j, power]
                if factor == 0:
                    continue
                for t in range(degree + 1 - power):
                    series[m, t + power] += factor * previous[t]
        for t in range(degree + 1):
            series[m, t] /= m
    return series[n]


@numba.njit(cache=True)
def loop_hafnian_polynomial(B, gamma, coupling, rows, counts, degree):
    """L(t) = lhaf_n(B, gamma + t coupling) for the pattern n (row rows[i] counts[i] times), as
    coefficients of t^0..t^degree (degree >= sum(counts) gives all of them)."""
    result = np.zeros(degree + 1, np.complex128)
    if counts.sum() == 0:
        result[0] = 1.0
        return result
    first, second, reps = pair_rows(rows, counts)
    n = reps.sum()
    deltas, weights = sieve_points(reps)
    for point in range(len(weights)):
        matrix, ends, weight = point_matrix(B, first, second, deltas[point])
        if matrix.shape[0] == 0:
            continue
        traces = point_traces(matrix, n)
        poly = point_polynomial(matrix, ends, weight, traces, gamma, coupling, n, degree)
        result += weights[point] * poly
    return result


def loop_hafnian(B: np.ndarray, gamma: np.ndarray, counts: np.ndarray) -> complex:
    """lhaf of B with loop weights gamma, row i repeated counts[i] times (a number)."""
    B = np.ascontiguousarray(B, dtype=np.complex128)
    gamma = np.ascontiguousarray(gamma, dtype=np.complex128)
    counts = np.asarray(counts, dtype=np.int64)
    rows = np.flatnonzero(counts).astype(np.int64)
    poly = loop_hafnian_polynomial(B, gamma, np.zeros_like(gamma), rows, counts[rows], 0)
    return complex(poly[0])

"""Gaussian states: their ops, exact photon-number statistics and exact sampling.

photon_statistics   exact P(N = n) of the total photon number, each mode's photon-number
                    marginal, click probabilities and the tail mass P(N > ceiling), from the
                    probability generating function (pure numpy)
loop_hafnian        numba kernels: loop hafnians of matrices with repeated rows by the
                    finite-difference sieve over paired rows, as polynomials in one loop weight
photon_sampling     the exact chain-rule photon-number (and threshold) sampler of Gaussian
                    states, batched over samples in one compiled kernel
symplectic          Gaussian ops as symplectic maps on means and covariances, batched
templates           the Gaussian boson sampling template's op list
states              GaussianStates: a batch's means, covariances and groups of equal states
outcomes            the Gaussian engine's sampler: homodyne and heterodyne as exact normal
                    draws, photon numbers and clicks by photon_sampling, exact summaries
"""

"""Benchmarks of cvgen's engines, run from benchmarks/*.py (or `python -m cvgen.bench.<name>`).

problems   the QNN circuits and drawn parameters the benchmarks and their tests run on
measure    what both benchmarks time with: one thread per library, steady-state samples/s,
           peak memory, worker processes
engines    samples/s and memory of every engine strategy, against dense and structured rooflines
accuracy   samples/s of each engine and truncation at the cutoff that meets a target error
jobs       one generation job's wall time, broken down, per backend
gbs        Gaussian boson sampling: cvgen's photon sampler against thewalrus and SF, per core
gaussian   the Gaussian engine against the compiled engine at equal accuracy; 100-mode
           homodyne and heterodyne
noise      the lossy QNN: density-matrix and trajectory paths against SF's mixed mode
"""

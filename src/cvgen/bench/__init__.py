"""Benchmarks of cvgen's engines, run from benchmarks/*.py (or `python -m cvgen.bench.<name>`).

problems   the QNN circuits and drawn parameters the benchmarks and their tests run on
measure    what both benchmarks time with: one thread per library, steady-state samples/s,
           peak memory, worker processes
engines    samples/s and memory of every engine strategy, against dense and structured rooflines
accuracy   samples/s of each engine and truncation at the cutoff that meets a target error
"""

"""Gaussian boson sampling benchmark: samples/s of cvgen's exact sampler against The Walrus and
Strawberry Fields, measured side by side in one run, one thread each (cvgen.bench.measure).

Problem: SF's 30-node "planted" graph (strawberryfields.apps.data.Planted), embedded at mean
photon number 8 with GraphEmbed on SF's Gaussian backend; the covariance is computed once and
given to every sampler (SF's apps sampler builds the same embedding itself from the graph).
  cvgen_pnr / cvgen_threshold   PhotonNumberSampler (cvgen.gaussian.photon_sampling), total
                                photons capped at --ceiling (its P(N > ceiling) is printed: the
                                bound on the sampler's total-variation distance)
  thewalrus_pnr                 thewalrus.samples.generate_hafnian_sample, per-mode cutoff 12,
                                samples above --ceiling photons rejected (as its max_photons)
  thewalrus_threshold           thewalrus.samples.generate_torontonian_sample
  sf_pnr / sf_threshold         strawberryfields.apps.sample.sample(A, n_mean=8, ...)
  floor                         for each photon pattern cvgen draws (not timed), the time of
                                ONE probability of it: thewalrus's loop_hafnian of the photon
                                pattern (pure state: |lhaf|^2 / n! times the vacuum
                                probability) and threshold_detection_prob of its clicks (the
                                torontonian). A chain-rule sampler evaluates at least the drawn
                                pattern's probability, so 1 / (mean time) bounds its samples/s
                                from above, whatever its constant factors.
Each method runs in its own worker process for --budget seconds, one after the other; a draw
still running at the budget is not counted (one sample of thewalrus or SF with many photons can
take minutes), and a method with none done is reported as at most 1/budget samples/s. cvgen's
first call, which compiles its numba kernels (or loads them from numba's cache), is timed
apart. Also: cvgen PNR on a 24-mode random GBS state (squeezing r on every mode, a Haar-random
interferometer), samples/s and its worker's peak resident memory.

    python benchmarks/gbs.py [--budget 60] [--ceiling 30] [--output results/benchmarks]
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from cvgen.bench.measure import machine, peak_rss_mb, single_thread

__all__ = [
    "floor_lines",
    "main",
    "planted_state",
    "probability_floor",
    "random_gbs_state",
    "run_all",
    "timed",
    "worker",
]

N_MEAN = 8.0
THEWALRUS_CUTOFF = 12
BATCH = 20  # cvgen samples per call
STARTUP_S = 120.0  # a worker's imports and compilation before its first draw, at most


def planted_state():
    """The planted graph's adjacency matrix and its GraphEmbed covariance and means (SF)."""
    import strawberryfields as sf
    from strawberryfields.apps import data

    adjacency = data.Planted().adj
    modes = len(adjacency)
    program = sf.Program(modes)
    with program.context as q:
        sf.ops.GraphEmbed(adjacency, mean_photon_per_mode=N_MEAN / modes) | q
    state = sf.Engine("gaussian").run(program).state
    return adjacency, state.cov(), state.means()


def random_gbs_state(modes: int, squeezing: float, seed: int = 0):
    """Squeezing r on every mode through a Haar-random interferometer: covariance and means."""
    from thewalrus.random import random_interferometer
    from thewalrus.symplectic import interferometer
    from thewalrus.symplectic import squeezing as squeeze

    np.random.seed(seed)  # random_interferometer draws from numpy's global generator
    symplectic = interferometer(random_interferometer(modes)) @ squeeze(np.full(modes, squeezing))
    return symplectic @ symplectic.T, np.zeros(2 * modes)


def worker(method: str, state: Path, ceiling: int) -> None:
    """Draw samples with one method forever, printing one JSON line per sample drawn (seconds
    since the first draw started); the parent stops it at its budget. `state` holds the
    adjacency matrix, covariance and means every method shares."""
    single_thread()  # before numba loads: NUMBA_NUM_THREADS=1 for thewalrus's parallel kernels
    from cvgen.gaussian.photon_sampling import PhotonNumberSampler

    rng = np.random.default_rng(0)
    with np.load(state) as arrays:
        adjacency, cov, means = arrays["adjacency"], arrays["cov"], arrays["means"]
    if method.startswith("cvgen"):
        sampler = PhotonNumberSampler(cov, means, ceiling)
        draw = cvgen_draw(sampler, method == "cvgen_threshold", rng)
        clock = time.perf_counter()
        draw()  # compiles the numba kernels, or loads them from numba's cache
        _emit({"first_call_s": time.perf_counter() - clock, "mass": sampler.mass_above_ceiling})
    elif method == "thewalrus_pnr":
        from thewalrus.samples import generate_hafnian_sample

        def draw():
            found = generate_hafnian_sample(cov, means, cutoff=THEWALRUS_CUTOFF,
                                            max_photons=ceiling)  # fmt: skip
            return int(found != -1)
    elif method == "floor":
        draw = probability_floor(PhotonNumberSampler(cov, means, ceiling), cov, means, rng)
    elif method == "thewalrus_threshold":
        from thewalrus.samples import generate_torontonian_sample

        def draw():
            generate_torontonian_sample(cov, means, max_photons=ceiling)
            return 1
    else:
        from strawberryfields.apps.sample import sample as sf_sample

        threshold = method == "sf_threshold"

        def draw():
            return len(sf_sample(adjacency, N_MEAN, 1, threshold=threshold))

    start = time.perf_counter()
    while True:
        count = draw()
        seconds = time.perf_counter() - start
        row = count if isinstance(count, dict) else {"samples": count}
        _emit({**row, "seconds": seconds, "peak_rss_mb": peak_rss_mb()})


def _emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def timed(method: str, state: Path, budget: float, ceiling: int) -> dict:
    """Run `method` in a worker process for `budget` seconds: samples drawn and their rate. A
    draw still running at the budget is not counted (thewalrus and SF can take minutes for one
    sample with many photons); with none done, the rate is reported as at most 1 / budget. A
    worker gets STARTUP_S more for its imports and compilation before its first draw."""
    command = [sys.executable, "-m", "cvgen.bench.gbs", "--worker", method, "--state", state]
    command += ["--ceiling", str(ceiling)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    row = {"samples": 0, "seconds": budget}
    spawned, started = time.perf_counter(), None
    try:
        while True:
            if started is None:  # imports and compilation, then the first draw
                wait = STARTUP_S + budget - (time.perf_counter() - spawned)
            else:
                wait = budget - (time.perf_counter() - started)
            if wait <= 0:
                break
            try:
                values = json.loads(lines.get(timeout=wait))
            except queue.Empty:
                break
            if "first_call_s" in values:
                row.update(values)
                continue
            if started is None:  # the budget counts from the first draw's start
                started = time.perf_counter() - values["seconds"]
            row["samples"] += values["samples"]
            for key in FLOOR_KEYS.intersection(values):
                row[key] = row.get(key, 0.0) + values[key]
            row["seconds"] = values["seconds"]
            row["peak_rss_mb"] = values["peak_rss_mb"]
    finally:
        process.kill()
        process.wait()
    if started is not None:  # the whole time spent drawing, the unfinished draw included
        row["seconds"] = min(budget, time.perf_counter() - started)
    row["rate"] = row["samples"] / row["seconds"] if row["samples"] else 0.0
    row["rate_at_most"] = None if row["samples"] else 1 / budget
    return row


def probability_floor(sampler, cov: np.ndarray, means: np.ndarray, rng):
    """One photon pattern drawn by cvgen (untimed), then the seconds of one exact probability of
    it and of its click pattern (thewalrus), and its photons. A pure state only: its photon
    probabilities are loop hafnians of the M x M Bargmann matrix."""
    from thewalrus import loop_hafnian, threshold_detection_prob

    from cvgen.gaussian.photon_sampling import bargmann_matrix

    modes = sampler.modes
    if not np.isclose(np.linalg.det(cov), 1.0, rtol=1e-6):
        raise ValueError("the probability floor is measured on pure states (det cov = 1)")
    B = bargmann_matrix(cov)
    alpha = (means[:modes] + 1j * means[modes:]) / 2
    gamma = alpha - B @ np.conj(alpha)
    one = np.eye(1, modes, dtype=np.int64)[0]  # compile both outside the timing, cheaply
    loop_hafnian(B[:2, :2], gamma[:2], reps=np.ones(2, np.int64))
    threshold_detection_prob(means, cov, one)

    def draw():
        pattern = sampler.sample(rng.standard_normal((1, 4 * modes)), rng.random((1, modes)))[0]
        clock = time.perf_counter()
        if pattern.any():
            loop_hafnian(B, gamma, reps=pattern)
        middle = time.perf_counter()
        threshold_detection_prob(means, cov, np.minimum(pattern, 1))
        end = time.perf_counter()
        return {"samples": 1, "lhaf_s": middle - clock, "tor_s": end - middle,
                "photons": int(pattern.sum())}  # fmt: skip

    return draw


def cvgen_draw(sampler, threshold: bool, rng):
    """One call of BATCH samples of cvgen's sampler (normals and uniforms drawn here)."""
    method = sampler.threshold if threshold else sampler.sample

    def draw():
        method(rng.standard_normal((BATCH, 4 * sampler.modes)), rng.random((BATCH, sampler.modes)))
        return BATCH

    return draw


METHODS = (
    "cvgen_pnr", "cvgen_threshold", "thewalrus_pnr", "thewalrus_threshold", "sf_pnr",
    "sf_threshold", "floor", "cvgen_pnr_24_modes",
)  # fmt: skip
FLOOR_KEYS = frozenset({"lhaf_s", "tor_s"})  # per-sample seconds the floor worker sums
# The targets, per core: cvgen / method >= factor.
TARGETS = {"thewalrus": 100.0, "sf": 1000.0}


def run_all(output: Path, budget: float = 60.0, ceiling: int = 30, squeezing: float = 0.5):
    """Measure every method in its own worker, one after the other; print the table."""
    output.mkdir(parents=True, exist_ok=True)
    planted, random_24 = output / "gbs_planted.npz", output / "gbs_24_modes.npz"
    adjacency, cov, means = planted_state()
    np.savez(planted, adjacency=adjacency, cov=cov, means=means)
    cov, means = random_gbs_state(24, squeezing)
    np.savez(random_24, adjacency=np.zeros((24, 24)), cov=cov, means=means)
    rows = {}
    for name in METHODS:
        state = random_24 if name.endswith("24_modes") else planted
        rows[name] = timed(name, state, budget, ceiling)
        print(f"{name}: {rows[name]}", flush=True)
    result = {"machine": machine(), "ceiling": ceiling, "budget_s": budget, "rows": rows}
    print_table(result, squeezing)
    (output / "gbs.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(result: dict, squeezing: float) -> None:
    """The samples/s table with the cvgen/thewalrus and cvgen/SF ratios."""
    rows = result["rows"]
    print(f"# GBS, planted graph (30 modes, mean {N_MEAN:g} photons); {result['machine']}")
    cvgen = rows["cvgen_pnr"]
    print(
        f"cvgen ceiling {result['ceiling']} photons: P(N > ceiling) = {cvgen['mass']:.3g} (its "
        f"total-variation bound); first call (numba compile or cache load) "
        f"{cvgen['first_call_s']:.1f} s; {result['budget_s']:g} s per method"
    )
    print(f"{'method':<22}{'samples':>9}{'seconds':>9}{'samples/s':>14}")
    for name, row in rows.items():
        if name == "floor":  # its time is mostly cvgen drawing the patterns: see floor_lines
            continue
        rate = f"<{row['rate_at_most']:.3g}" if row["rate_at_most"] else f"{row['rate']:.4g}"
        print(f"{name:<22}{row['samples']:>9}{row['seconds']:>9.1f}{rate:>14}")
    for kind in ("pnr", "threshold"):
        mine = rows[f"cvgen_{kind}"]["rate"]
        ratios = []
        for other in ("thewalrus", "sf"):
            row = rows[f"{other}_{kind}"]
            if row["samples"]:
                ratios.append(f"cvgen/{other} {mine / row['rate']:.3g}x")
            else:
                ratios.append(f"cvgen/{other} > {mine / row['rate_at_most']:.3g}x (none in budget)")
        print(f"{kind}: {', '.join(ratios)} (one thread each)")
    print(f"24 modes, r = {squeezing:g}: P(N > ceiling) = {rows['cvgen_pnr_24_modes']['mass']:.3g}")
    for line in floor_lines(rows):
        print(line)


def floor_lines(rows: dict) -> list[str]:
    """The floor: the mean seconds of one probability of a drawn pattern, the samples/s a
    chain-rule sampler can reach at most, and the rate each target asks of cvgen."""
    floor = rows["floor"]
    if not floor["samples"]:
        return ["floor: no pattern measured within the budget"]
    lines = []
    for key, what in (("lhaf_s", "loop hafnian of the photon pattern"),
                      ("tor_s", "torontonian of the click pattern")):  # fmt: skip
        mean = floor[key] / floor["samples"]
        lines.append(
            f"floor: one {what}: {1e3 * mean:.3g} ms per sample on average over "
            f"{floor['samples']} drawn patterns, so at most {1 / mean:.4g} samples/s"
        )
    for kind in ("pnr", "threshold"):
        for other, factor in TARGETS.items():
            row = rows[f"{other}_{kind}"]
            if row["samples"]:
                lines.append(
                    f"target {kind} >= {factor:g}x {other}: {factor * row['rate']:.4g} samples/s"
                )
    return lines


def main(argv: list[str] | None = None) -> None:
    """Command line (and, with --worker, one method's worker process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", default="results/benchmarks", help="folder for gbs.json")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per method")
    parser.add_argument("--ceiling", type=int, default=30, help="cvgen's photon ceiling")
    parser.add_argument("--squeezing", type=float, default=0.5, help="r of the 24-mode state")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.state, args.ceiling)
        return
    run_all(Path(args.output), args.budget, args.ceiling, args.squeezing)


if __name__ == "__main__":
    main()

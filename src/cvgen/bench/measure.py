"""What both benchmarks time with: one thread per library, steady-state samples/s, peak memory,
and worker processes (a fresh process per measurement, so peak memory is that measurement's)."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time

from threadpoolctl import threadpool_limits

__all__ = ["THREAD_VARIABLES", "machine", "measure", "peak_rss_mb", "single_thread", "worker_rows"]

# Read by OpenMP, OpenBLAS, MKL and numba when they load; TF's threads are set on import.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def single_thread() -> None:
    """Run every library of this worker on one thread, as TF is: numpy's BLAS and OpenMP now
    (threadpoolctl; they are already loaded), numba when it loads. Left to its own threads,
    OpenBLAS makes the numpy engine ~17x slower on a busy 2-core machine."""
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    threadpool_limits(1)


def machine() -> str:
    """The machine and thread setting, for the reports."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, one thread per worker process "
        f"(TF, numpy's BLAS, numba)"
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: /proc's VmHWM, which starts afresh
    at exec (getrusage's ru_maxrss keeps the peak of the process that forked a worker, so a
    worker started by a parent holding TensorFlow would report the parent's size)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_rows(command: list[str]) -> list[dict]:
    """Run a worker process to completion; the JSON lines it printed, as dicts."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"benchmark worker {' '.join(command[2:])} failed (exit {done.returncode}):\n"
            + done.stderr[-3000:]
        )
    return [json.loads(line) for line in done.stdout.splitlines()]


def measure(run, batch_size: int, samples: int, min_seconds: float) -> float:
    """Steady-state samples/s: one warm-up batch, then batches for at least min_seconds."""
    run(0, batch_size)
    done, start, clock = 0, 0, time.perf_counter()
    while time.perf_counter() - clock < min_seconds or done == 0:
        start = (start + batch_size) % max(1, samples - batch_size)
        run(start, batch_size)
        done += batch_size
    return done / (time.perf_counter() - clock)

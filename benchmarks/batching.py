"""How much batching buys on SF's TF backend: samples/s per batch size, measured side by side.

    python benchmarks/batching.py [--modes 2 --layers 2 --cutoff 10 --samples 256]

Runs the QNN template on the same drawn parameters with batch_size 1 (SF unbatched, sample by
sample) and several batch sizes, one engine each in this process, after one warm-up batch per
engine (numba compilation and TF set-up are one-off costs, reported separately in datasets).
Prints a table of samples/s and the speed-up over sample-by-sample runs.
"""

from __future__ import annotations

import argparse
import time

from cvgen.circuits import circuit_from_config
from cvgen.config import validate_config
from cvgen.engines import SFEngine, configure_tensorflow
from cvgen.observables import OUTPUTS, ket_observables
from cvgen.params import draw_parameters


def measure(circuit, drawn, batch_size: int, samples: int) -> float:
    """Steady-state samples/s of one engine: kets and all observables, after a warm-up batch."""
    engine = SFEngine(circuit, batch_size)
    engine.kets(drawn.batch_args(0, batch_size), batch_size)
    clock = time.perf_counter()
    for start in range(0, samples, batch_size):
        stop = min(start + batch_size, samples)
        ket_observables(engine.kets(drawn.batch_args(start, stop), stop - start), OUTPUTS)
    return samples / (time.perf_counter() - clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=2)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--cutoff", type=int, default=10)
    parser.add_argument("--samples", type=int, default=256, help="samples per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64, 128])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure_tensorflow(args.threads)
    config = validate_config(
        {
            "circuit": {"modes": args.modes, "layers": args.layers, "cutoff": args.cutoff},
            "samples_per_circuit": args.samples,
            "shard_size": args.samples,
        }
    )
    circuit = circuit_from_config(config)
    drawn = draw_parameters(circuit.parameter_names, config["parameters"], 1, 1, args.samples)
    print(
        f"QNN {args.modes} modes x {args.layers} layers, cutoff {args.cutoff}, complex64, "
        f"{args.samples} samples, {args.threads} thread(s)"
    )
    print(f"{'batch size':>10} {'samples/s':>10} {'vs batch 1':>10}")
    baseline = None
    for batch_size in args.batch_sizes:
        rate = measure(circuit, drawn, batch_size, args.samples)
        baseline = baseline or rate
        print(f"{batch_size:>10} {rate:>10.1f} {rate / baseline:>9.1f}x")


if __name__ == "__main__":
    main()

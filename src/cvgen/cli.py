"""Command line: `cvgen STEP ...` runs one workflow stage; rule scripts call the same code.

Errors a user can fix (CvgenError) end as one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from cvgen.errors import CvgenError, DiskFullError

log = logging.getLogger("cvgen")


def build_parser() -> argparse.ArgumentParser:
    """The `cvgen` parser with one subcommand per stage."""
    parser = argparse.ArgumentParser(prog="cvgen", description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also append log messages to this file")
    steps = parser.add_subparsers(dest="step", required=True)

    step = steps.add_parser("prepare-params", help="draw every parameter value -> params.h5")
    step.add_argument("--config", required=True, help="YAML config file")
    step.add_argument("--output", required=True, help="params.h5 to write")

    step = steps.add_parser("generate-shard", help="simulate one shard in batches -> shard.h5")
    step.add_argument("--params", required=True, help="params.h5 from prepare-params")
    step.add_argument("--shard", required=True, type=int, help="shard index, from 0")
    step.add_argument("--output", required=True, help="shard file to write")
    step.add_argument(
        "--threads", type=int, default=1, help="threads of numpy's BLAS or TensorFlow (default 1)"
    )

    step = steps.add_parser("aggregate", help="verify all shards -> dataset.h5")
    step.add_argument("--params", required=True, help="params.h5 from prepare-params")
    step.add_argument("--output", required=True, help="dataset.h5 to write")
    step.add_argument("shards", nargs="+", help="shard files, in shard order")

    step = steps.add_parser("report", help="performance report of a dataset -> json, md, PNGs")
    step.add_argument("--dataset", required=True, help="dataset.h5 from aggregate")
    step.add_argument("--json", required=True, help="report.json to write")
    step.add_argument("--markdown", required=True, help="report.md to write")
    step.add_argument("--plots", required=True, help="folder for the PNG plots")
    step.add_argument("benchmarks", nargs="*", help="Snakemake benchmark TSVs, in shard order")

    step = steps.add_parser(
        "card", help="the dataset card of a dataset -> DATASET.md and croissant.json"
    )
    step.add_argument("--dataset", required=True, help="dataset.h5 from aggregate")
    step.add_argument("--markdown", required=True, help="DATASET.md to write")
    step.add_argument("--croissant", required=True, help="croissant.json to write")

    step = steps.add_parser(
        "suggest-cutoff",
        help="smallest cutoff whose outputs move by at most a tolerance at a higher cutoff",
    )
    step.add_argument("--config", required=True, help="YAML config file")
    step.add_argument("--tolerance", type=float, help="default: the config's convergence.tolerance")
    step.add_argument("--samples", type=int, default=16, help="seeded samples re-run (16)")
    step.add_argument("--from", dest="first", type=int, default=3, help="first cutoff tried (3)")
    step.add_argument("--to", dest="last", type=int, default=30, help="last cutoff tried (30)")

    step = steps.add_parser("config", help="print the config a dataset was built from (YAML)")
    step.add_argument("dataset", help="a dataset.h5 (or params.h5) file")

    step = steps.add_parser(
        "verify",
        help="check every array's checksum (a dataset's manifest, a shard's .sha256): one line "
        "per file, exit 1 if any is damaged",
    )
    step.add_argument("files", nargs="+", help="shards, params.h5 or dataset.h5 files")

    step = steps.add_parser(
        "summary",
        help="what a built dataset holds and where its report is (how `make run` ends)",
    )
    step.add_argument("results", help="the dataset's folder, results/{dataset}")
    return parser


def run(args: argparse.Namespace) -> None:
    """Run the stage `args.step` with its parsed arguments."""
    if args.step == "prepare-params":
        from cvgen.config import read_config
        from cvgen.stages import prepare_params

        prepare_params(read_config(args.config), args.output)
    elif args.step == "generate-shard":
        from cvgen.stages import generate_shard

        generate_shard(args.params, args.shard, args.output, args.threads)
    elif args.step == "aggregate":
        from cvgen.dataset import aggregate

        aggregate(args.params, args.shards, args.output)
    elif args.step == "report":
        from cvgen.report import build_report

        build_report(args.dataset, args.json, args.markdown, args.plots, args.benchmarks)
    elif args.step == "card":
        from cvgen.card import write_card

        write_card(args.dataset, args.markdown, args.croissant)
    elif args.step == "suggest-cutoff":
        from cvgen.config import read_config
        from cvgen.convergence import render_suggestion, suggest_for_config
        from cvgen.plan import build_plan

        plan = build_plan(read_config(args.config))
        found = suggest_for_config(plan, args.tolerance, args.samples, args.first, args.last)
        print(render_suggestion(found))
        if not found["cutoff"]:
            raise CvgenError(
                f"no cutoff up to {args.last} meets the tolerance {found['tolerance']:g}; try "
                f"--to higher, or narrow the parameter distributions"
            )
    elif args.step == "config":
        print(dataset_config_yaml(args.dataset), end="")
    elif args.step == "verify":
        verify(args.files)
    elif args.step == "summary":
        print(summary(args.results), end="")


def summary(results: str | Path) -> str:
    """A few lines for the terminal from a built dataset's report.json: the dataset, its size
    and speed, its truncation verdict, and where the report and the HTML page are."""
    import json

    folder = Path(results)
    path = folder / "report.json"
    if not path.is_file():
        raise CvgenError(
            f"{path} not found: build the dataset first (`make run`, or snakemake --cores N)"
        )
    report = json.loads(path.read_text())
    perf, trunc, check = report["performance"], report["truncation"], report["convergence"]
    from cvgen.conventions import SAMPLING_OUTPUTS

    names = report.get("covered_outputs") or list(report["outputs"])
    outputs = ", ".join(name for name in names if name not in SAMPLING_OUTPUTS)
    sampled = [name for name in names if name in SAMPLING_OUTPUTS]
    if sampled:
        outputs += f"; sampled: {', '.join(sampled)} ({report['sampling']['shots']} shots each)"
    if check["verdict"] == "exact":
        verdict = "exact: engine gaussian has no cutoff, nothing is truncated"
    elif check["outputs"]:
        worst = max(entry["max_abs_deviation"] for entry in check["outputs"].values())
        verdict = (
            f"{check['verdict']}: outputs move at most {worst:.1e} at cutoff "
            f"{check['reference_cutoff']} instead of {check['cutoff']} (tolerance "
            f"{check['tolerance']:g}); lowest norm {trunc['norm_min']:.6f}"
        )
    else:
        verdict = (
            f"not measured (convergence.fraction: 0); lowest norm {trunc['norm_min']:.6f}, "
            f"{trunc['samples_below_threshold']} samples below norm_threshold "
            f"{trunc['norm_threshold']:g}"
        )
    html = folder / "report.html"
    page = (
        f"{html}  (self-contained: open it in a browser)"
        if html.is_file()
        else f"not built: snakemake --report {html}"
    )
    figures = report.get("figures", [])
    dataset = folder / "dataset.h5"
    rows = [
        ("dataset", f"{dataset}  ({report['n_samples']:,} samples, "
         f"{report['circuit']['modes']} modes)"),
        ("outputs", outputs),
        ("speed", f"{perf['samples_per_s']:,.0f} samples/s overall ({report['n_shards']} shard "
         f"jobs in {perf['makespan_s']:.1f} s, engine {report['engine']} on "
         f"{report['backend']})"),
        ("truncation", verdict),
        ("report", f"{folder / 'report.md'}  ({len(figures)} figures in {folder / 'report'}/)"),
        ("HTML page", page),
        ("in Python", f'cvgen.read_dataset("{dataset}")'),
    ]  # fmt: skip
    lines = [f"cvgen: dataset {report['dataset']} is built", *(f"  {k:<11} {v}" for k, v in rows)]
    return "\n".join(lines) + "\n"


def verify(paths: list[str]) -> None:
    """Print one line per file: OK with its counts, or the damage as a `cvgen error:` line;
    exit 1 when any file is damaged (every file is checked first)."""
    from cvgen.dataset import verify_file

    damaged = 0
    for path in paths:
        try:
            print(verify_file(path), flush=True)
        except CvgenError as err:
            print(f"cvgen error: {err}", file=sys.stderr, flush=True)
            damaged += 1
    if damaged:
        sys.exit(1)


def dataset_config_yaml(path: str | Path) -> str:
    """The full config stored in a dataset or params file, as YAML ready to rebuild from."""
    import json

    import yaml

    from cvgen.shards import open_h5

    with open_h5(path, "file", "pass a dataset.h5 or params.h5 written by cvgen") as handle:
        if "config" not in handle.attrs:
            raise CvgenError(f"{path} holds no cvgen config; pass a dataset.h5 or params.h5")
        return yaml.safe_dump(json.loads(handle.attrs["config"]), sort_keys=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `cvgen` (and of rule scripts run by hand)."""
    args = build_parser().parse_args(argv)
    with reported_errors(args.log):
        run(args)


@contextlib.contextmanager
def reported_errors(log_file: str | None = None):
    """Log to stderr; a CvgenError ends as one line on the terminal and exit status 1.

    With `log_file` (rule jobs), file descriptor 2 itself is sent to the log, so that
    TensorFlow's native start-up messages and any traceback land there too, and only the
    one-line error reaches the terminal, with one `cvgen warning:` line per warning (a check
    that failed or could not measure must not hide in a log file).
    """
    terminal = sys.stderr
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        terminal = os.fdopen(os.dup(2), "w", buffering=1)
        with open(log_file, "a") as log_stream:
            os.dup2(log_stream.fileno(), 2)
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        loud = logging.StreamHandler(terminal)
        loud.setLevel(logging.WARNING)
        loud.addFilter(lambda record: record.levelno == logging.WARNING)
        loud.setFormatter(logging.Formatter("cvgen warning: %(message)s"))
        handlers.append(loud)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    try:
        yield
    except CvgenError as err:
        if log_file:
            log.error("%s", err)
        print(f"cvgen error: {err}", file=terminal, flush=True)
        if isinstance(err, DiskFullError):  # skip HDF5's shutdown, see DiskFullError
            logging.shutdown()
            sys.stderr.flush()
            os._exit(1)
        sys.exit(1)

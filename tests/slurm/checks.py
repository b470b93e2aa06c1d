"""Assertions of the Slurm end-to-end test (tests/slurm/run.sh), one subcommand per step.

    python checks.py corrupt-shard-inputs PARAMS SHARD CONFIG
    python checks.py failed-run LOG WORKDIR CONFIG SHARD SLURM_LOGS
    python checks.py verify WORKDIR CONFIG
    python checks.py jobs SLURM_LOGS LOG [LOG ...]

SLURM_LOGS is the test cluster's log folder: jobcomp.log (one line per finished Slurm job,
written by slurmctld) and tasks.log (one line per task Slurm started, written by the
TaskProlog inside the job, with the job's SLURM_JOB_ID and environment).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml

from cvgen.config import config_hash, shard_ranges
from cvgen.plan import validate_config

SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def results(workdir: Path, config: dict) -> Path:
    return workdir / "results" / config["dataset"]


def load(config_path: str) -> dict:
    return validate_config(yaml.safe_load(Path(config_path).read_text()))


def corrupt_shard_inputs(params_path: str, shard: str, config_path: str) -> None:
    """Set the per-sample parameters of one shard's rows in params.h5 to NaN (in place).

    The config stays valid and is checked before any job runs; what fails is that shard's
    generation job, at run time inside Slurm, on its NaN outputs, like a job whose inputs were
    damaged on the cluster. The other shards' rows are untouched.
    """
    start, stop = shard_ranges(load(config_path))[int(shard)]
    with h5py.File(params_path, "r+") as handle:
        handle["samples/parameters"][start:stop] = np.nan
    print(f"params.h5: per-sample parameters of shard {shard} (samples [{start}, {stop})) = NaN")


def slurm_jobs(logs: list[str]) -> list[tuple[str, str, str]]:
    """(Slurm job id, rule and wildcards, Slurm log file) of every submission in Snakemake logs."""
    jobs = []
    for log in logs:
        for job_id, path in SUBMITTED.findall(Path(log).read_text()):
            rule = path.split("/slurm_logs/", 1)[1].rsplit("/", 1)[0]  # rule_x[/wildcards]
            jobs.append((job_id, rule.removeprefix("rule_"), path))
    return jobs


def jobcomp(slurm_logs: Path) -> dict[str, dict[str, str]]:
    """slurmctld's record of every finished job: id -> JobState, ExitCode, NodeList, ..."""
    records = {}
    for line in (slurm_logs / "jobcomp.log").read_text().splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        records[fields["JobId"]] = fields
    return records


def tasks(slurm_logs: Path) -> dict[str, list[str]]:
    """Job id -> the TaskProlog lines of its tasks (batch script and srun steps)."""
    found: dict[str, list[str]] = {}
    for line in (slurm_logs / "tasks.log").read_text().splitlines():
        job_id = line.split()[0].removeprefix("SLURM_JOB_ID=")
        found.setdefault(job_id, []).append(line)
    return found


def failed_run(log: str, workdir: str, config_path: str, shard: str, slurm_logs: str) -> None:
    """Snakemake reported the corrupted shard's job as failed, after Slurm ran it; the others
    finished (keep-going) and nothing was aggregated."""
    config = load(config_path)
    text = Path(log).read_text()
    failed = re.search(r"Error in rule generate_shard:.*?external_jobid: (\d+)", text, re.S)
    assert failed, "Snakemake did not report a failed generate_shard job"
    assert f"shards/{shard}.h5" in failed.group(0), failed.group(0)
    assert "cvgen error:" in text and "NaN" in text, "the job's own error is not shown"
    job_id = failed.group(1)
    record = jobcomp(Path(slurm_logs))[job_id]
    assert record["JobState"] == "FAILED" and record["ExitCode"] != "0:0", record
    assert "SLURM_STEP_ID=0" in " ".join(tasks(Path(slurm_logs))[job_id]), "no srun step ran"
    shards = results(Path(workdir), config) / "shards"
    present = sorted(int(path.stem) for path in shards.glob("*.h5"))
    expected = [i for i in range(len(shard_ranges(config))) if i != int(shard)]
    assert present == expected, f"shards on disk {present}, expected {expected}"
    assert not (results(Path(workdir), config) / "dataset.h5").exists()
    print(
        f"failing job: Slurm job {job_id} (generate_shard, shard={shard}) JobState="
        f"{record['JobState']} ExitCode={record['ExitCode']}; Snakemake exited non-zero and "
        f"reported it; shards {expected} finished"
    )


def verify(workdir: str, config_path: str) -> None:
    """The dataset built on Slurm is complete, finite and from this config."""
    from cvgen import read_dataset

    config = load(config_path)
    dataset = read_dataset(results(Path(workdir), config) / "dataset.h5")
    samples = config["n_circuits"] * config["samples_per_circuit"]
    assert dataset.config == config and dataset.attrs["config_hash"] == config_hash(config)
    assert dataset.shards["stop"].tolist() == [stop for _, stop in shard_ranges(config)]
    for name, values in dataset.outputs.items():
        assert len(values) == samples and np.all(np.isfinite(values)), name
    job_ids = dataset.shards["slurm_job_id"].tolist()
    assert all(job_ids) and len(set(job_ids)) == len(job_ids), job_ids
    print(f"dataset verified: {samples} samples, outputs {sorted(dataset.outputs)}")
    print(f"each shard records the Slurm job that generated it: {job_ids}")


def jobs(slurm_logs: str, *logs: str) -> None:
    """Every Snakemake job ran as a Slurm job: slurmctld recorded it, its srun step started
    inside the allocation (SLURM_JOB_ID, HDF5_USE_FILE_LOCKING=FALSE) and the rule ran there."""
    records, started = jobcomp(Path(slurm_logs)), tasks(Path(slurm_logs))
    submitted = slurm_jobs(list(logs))
    assert submitted, "no job was submitted to Slurm"
    print(f"{'slurm job':>9}  {'rule':<26} {'state':<10} {'exit':<5} task environment (step 0)")
    for job_id, rule, log in submitted:
        record = records[job_id]
        step = [line for line in started.get(job_id, []) if "SLURM_STEP_ID=0 " in line]
        assert step, f"Slurm job {job_id} ({rule}) started no srun step"
        assert "HDF5_USE_FILE_LOCKING=FALSE" in step[0], step[0]
        assert f"rule {rule.split('/')[0]}:" in Path(log).read_text(), f"{rule} not in {log}"
        assert record["NodeList"] != "(null)"
        print(f"{job_id:>9}  {rule:<26} {record['JobState']:<10} {record['ExitCode']:<5} {step[0]}")
    print(f"{len(submitted)} Snakemake jobs, each its own Slurm job")


if __name__ == "__main__":
    commands = {
        "corrupt-shard-inputs": corrupt_shard_inputs,
        "failed-run": failed_run,
        "verify": verify,
        "jobs": jobs,
    }
    commands[sys.argv[1]](*sys.argv[2:])

"""Typed records that cross files: what a generation job records about its run.

A shard file carries its ShardRun as root attributes; aggregation copies every field into the
dataset's /provenance/shards table (one array per field); the report reads them back. The field
names are spelled here only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["RUN_FIELDS", "ShardRun"]


@dataclass(frozen=True)
class ShardRun:
    """One generation job: which samples, how it ran, and where its time went (seconds)."""

    shard_index: int
    start: int
    stop: int
    engine: str
    backend: str  # numpy or tensorflow
    backend_reason: str
    batch_size: int  # the batch size used (after the memory budget)
    threads: int
    process_start_unix: float
    import_s: float  # TensorFlow (and SF) import; 0 on numpy
    startup_s: float  # process start to engine ready: interpreter, imports, params.h5, set-up
    trace_s: float  # TF tracing of the batch function (inside the first batch); 0 on numpy
    first_batch_s: float  # the first batch, tracing and graph optimisation included
    first_batch_samples: int
    steady_s: float
    steady_samples: int
    compute_s: float
    norm_below_threshold: int
    convergence_s: float
    finished_unix: float  # computing done; the write follows
    peak_rss_mb: float  # the job's own peak resident memory (getrusage), computing done
    host: str
    slurm_job_id: str

    def attrs(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_attrs(cls, attrs) -> ShardRun:
        """The record stored in a shard's attributes (numpy scalars made plain)."""
        values = {}
        for field in dataclasses.fields(cls):
            value = attrs[field.name]
            values[field.name] = value.item() if hasattr(value, "item") else value
        return cls(**values)


RUN_FIELDS = tuple(field.name for field in dataclasses.fields(ShardRun))

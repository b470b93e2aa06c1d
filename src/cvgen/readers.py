"""Reading selected samples of a dataset.h5 without loading the file: what the torch and tf.data
readers (cvgen.torch, cvgen.tf) are built on, usable from numpy alone.

`SampleReader` reads its metadata once (outputs, parameter names, the split's sample rows) and
opens the HDF5 file lazily, once per process: an h5py handle cannot cross into a DataLoader
worker (fork or spawn), so each worker opens its own on first use. Every chunk read is checked
against its Fletcher-32 checksum by HDF5 itself; a damaged one is one CvgenError naming the file
and the array. Batches are read in as few HDF5 selections as the rows allow: one slice for
contiguous or nearby rows, else one slice per chunk the rows touch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from cvgen.errors import CvgenError
from cvgen.splits import sample_rows

__all__ = ["CHUNK_CACHE_BYTES", "SampleReader"]

CHUNK_CACHE_BYTES = 64 << 20  # HDF5's chunk cache per open array, so nearby reads reuse chunks
FIX = "rebuild it with snakemake (see DATASET.md next to it)"


class SampleReader:
    """Selected outputs and inputs of the samples of one dataset (or one part of its split).

    outputs: output names (default: every output the dataset has).
    inputs: parameter names, per-sample or per-circuit (per-circuit values are given per
        sample, through its circuit); default: every per-sample parameter.
    split: a part of the dataset's split (`train`, `val`, `test`, as configured), or None.
    chunk_cache_bytes: HDF5's cache of decompressed chunks, per array and process: reads that
        hit a cached chunk skip its decompression (a file larger than the cache is read from
        disk and decompressed chunk by chunk).
    Position i (0 <= i < len) is the i-th sample row of the selection, in file order.
    """

    def __init__(
        self,
        path: str | Path,
        outputs: list[str] | None = None,
        inputs: list[str] | None = None,
        split: str | None = None,
        chunk_cache_bytes: int = CHUNK_CACHE_BYTES,
    ):
        self.path = str(path)
        self.chunk_cache_bytes = chunk_cache_bytes
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._arrays: dict[str, h5py.Dataset] = {}
        self._chunk_rows: dict[str, int] = {}
        with self._open() as handle:
            if "outputs" not in handle or "samples" not in handle:
                raise CvgenError(f"{self.path} is not a cvgen dataset.h5; {FIX}")
            self.attrs = dict(handle.attrs)
            available = list(handle["outputs"])
            self.outputs = self._choose("output", outputs, available, available)
            self.shapes = {name: handle["outputs"][name].shape[1:] for name in self.outputs}
            self.dtypes = {name: handle["outputs"][name].dtype for name in self.outputs}
            sample_names = json.loads(handle["samples/parameters"].attrs["names"])
            circuit_names = json.loads(handle["circuits/parameters"].attrs["names"])
            self.inputs = self._choose(
                "input", inputs, sample_names, [*sample_names, *circuit_names]
            )
            self._sample_columns = [sample_names.index(n) for n in self.inputs if n in sample_names]
            self._circuit_names = [n for n in self.inputs if n in circuit_names]
            stacked = [*(n for n in self.inputs if n in sample_names), *self._circuit_names]
            self._column_order = [stacked.index(n) for n in self.inputs]
            self._circuit_values = self._circuit_inputs(handle, circuit_names)
            self.split = split
            self.rows = self._split_rows(handle, split)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        """Pickled into worker processes without the open handle: each opens its own."""
        state = dict(self.__dict__)
        state["_handle"] = state["_pid"] = None
        state["_arrays"] = {}
        return state

    @property
    def handle(self) -> h5py.File:
        """The file, opened once per process."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = self._open()
            self._pid = os.getpid()
            self._arrays = {}
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None
        self._arrays = {}

    def read(self, positions) -> dict[str, np.ndarray]:
        """The samples at `positions` (of this selection), as arrays with the samples first:
        `index` (the sample's row in the dataset), `circuit`, `inputs` (samples x inputs,
        float64; absent when no inputs are selected) and every selected output."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self.rows)):
            raise IndexError(f"positions must lie in [0, {len(self.rows)})")
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        unique, inverse = np.unique(wanted, return_inverse=True)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        take = inverse[back]  # row i of the batch is unique[take[i]]
        batch: dict[str, np.ndarray] = {"index": rows}
        circuit = self._rows("samples/circuit_index", unique)[take]
        batch["circuit"] = circuit
        if self.inputs:
            columns = []
            if self._sample_columns:
                values = self._rows("samples/parameters", unique)[take]
                columns.append(values[:, self._sample_columns])
            if self._circuit_values is not None:
                columns.append(self._circuit_values[circuit])
            batch["inputs"] = np.concatenate(columns, axis=1)[:, self._column_order]
        for name in self.outputs:
            batch[name] = self._rows(f"outputs/{name}", unique)[take]
        return batch

    def _rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Sorted unique `rows` of one array, in one selection, checked by HDF5's checksums."""
        handle = self.handle  # this process's, which the cached arrays below belong to
        if name not in self._arrays:  # looking an array up by path costs more than reading it
            self._arrays[name] = handle[name]
            self._chunk_rows[name] = (handle[name].chunks or (1,))[0]
        data = self._arrays[name]
        try:
            if not len(rows):
                return np.empty((0, *data.shape[1:]), dtype=data.dtype)
            first, last = int(rows[0]), int(rows[-1]) + 1
            if last - first == len(rows):
                return data[first:last]
            chunk = self._chunk_rows[name]
            if last - first <= max(4 * len(rows), chunk):  # nearby rows: one slice, then pick
                return data[first:last][rows - first]
            # Far apart: one slice per chunk they touch (HDF5's point selections of many rows
            # cost far more than the slices; each chunk is decompressed once either way).
            ids = rows // chunk
            groups = np.split(rows, np.flatnonzero(np.diff(ids)) + 1)
            return np.concatenate([data[g[0] : g[-1] + 1][g - g[0]] for g in groups])
        except OSError as err:
            reason = "fails its checksum" if "filter" in str(err) else f"cannot be read ({err})"
            raise CvgenError(f"dataset {self.path}: array {name} {reason}; {FIX}") from err

    def _open(self) -> h5py.File:
        try:
            cache = self.chunk_cache_bytes
            return h5py.File(self.path, "r", rdcc_nbytes=cache, rdcc_nslots=100_003)
        except FileNotFoundError as err:
            raise CvgenError(f"dataset {self.path} not found; build it with snakemake") from err
        except OSError as err:
            raise CvgenError(
                f"dataset {self.path} is not a readable HDF5 file ({err}); {FIX}"
            ) from err

    def _choose(self, what: str, chosen, default: list[str], allowed: list[str]) -> list[str]:
        if chosen is None:
            return list(default)
        if isinstance(chosen, str):
            chosen = [chosen]
        for name in chosen:
            if name not in allowed:
                raise CvgenError(
                    f"dataset {self.path} has no {what} {name!r}; its {what}s are "
                    f"{', '.join(allowed) or 'none'}"
                )
        return list(chosen)

    def _circuit_inputs(self, handle: h5py.File, circuit_names: list[str]) -> np.ndarray | None:
        """The selected per-circuit inputs of every circuit (circuits x inputs), or None."""
        if not self._circuit_names:
            return None
        values = handle["circuits/parameters"][()]
        return values[:, [circuit_names.index(n) for n in self._circuit_names]]

    def _split_rows(self, handle: h5py.File, split: str | None) -> np.ndarray:
        n_samples = handle["samples/circuit_index"].shape[0]
        if split is None:
            return np.arange(n_samples, dtype=np.int64)
        recorded = json.loads(self.attrs.get("split", "null"))
        if not recorded:
            raise CvgenError(
                f"dataset {self.path} has no split, so it has no part {split!r}: add e.g. "
                f"`split: {{train: 0.8, val: 0.1, test: 0.1}}` to its config and rebuild it, "
                f"or read it with split=None"
            )
        parts = recorded["parts"]
        if split not in parts:
            raise CvgenError(
                f"dataset {self.path} has no split part {split!r}; its parts are {', '.join(parts)}"
            )
        circuit_parts = handle["splits/circuit_part"][()]
        circuit_index = handle["samples/circuit_index"][()]
        return sample_rows(circuit_parts, circuit_index, parts.index(split))

"""A dataset.h5 as a PyTorch Dataset: `CvgenDataset`, for DataLoaders with any number of workers.

    pip install -e .[torch]

    from torch.utils.data import DataLoader
    from cvgen.torch import CvgenDataset

    data = CvgenDataset("results/demo/dataset.h5", outputs=["quad_x"], split="train")
    for batch in DataLoader(data, batch_size=256, shuffle=True, num_workers=4):
        batch["inputs"], batch["quad_x"]  # (256, inputs) float64, (256, modes) float32

The file is opened lazily, once per worker process (h5py handles cannot cross processes), and
only the samples a batch asks for are read (cvgen.readers.SampleReader).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

try:
    import torch
    from torch.utils.data import Dataset
except ImportError:  # one line naming the fix, not a traceback through torch's absence
    raise ImportError(
        "cvgen.torch needs PyTorch: pip install -e .[torch] in the cvgen checkout "
        "(or pip install torch==2.13.0)"
    ) from None

import numpy as np

from cvgen.readers import SampleReader

__all__ = ["CvgenDataset"]


class CvgenDataset(Dataset):
    """Samples of a dataset.h5 as dicts of tensors, sample axis first.

    Each item holds `index` (the sample's row in the file), `circuit` (its circuit), `inputs`
    (the selected parameters, float64; absent if `inputs=[]`) and every selected output in its
    stored dtype (uint16 photon counts become int32, which torch supports fully). A
    `transform` is applied to each item dict. `split` names a part of the dataset's split
    (circuits never straddle parts). See cvgen.readers.SampleReader for `outputs` and `inputs`.
    """

    def __init__(
        self,
        path: str | Path,
        outputs: list[str] | None = None,
        inputs: list[str] | None = None,
        split: str | None = None,
        transform: Callable | None = None,
    ):
        self.reader = SampleReader(path, outputs=outputs, inputs=inputs, split=split)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, position: int):
        return self._items([position])[0]

    def __getitems__(self, positions: list[int]) -> list:
        """A whole batch in one read per array (DataLoader calls this when it exists)."""
        return self._items(positions)

    def _items(self, positions) -> list:
        batch = {name: _tensor(values) for name, values in self.reader.read(positions).items()}
        rows = zip(*(values.unbind(0) for values in batch.values()), strict=True)
        items = [dict(zip(batch, row, strict=True)) for row in rows]
        if self.transform is not None:
            items = [self.transform(item) for item in items]
        return items


def _tensor(values: np.ndarray) -> torch.Tensor:
    if values.dtype == np.uint16:
        values = values.astype(np.int32)
    return torch.from_numpy(np.ascontiguousarray(values))

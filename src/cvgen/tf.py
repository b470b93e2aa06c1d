"""A dataset.h5 as a tf.data.Dataset that streams batches from the file.

    from cvgen.tf import dataset

    for batch in dataset("results/demo/dataset.h5", outputs=["quad_x"], split="train",
                         batch_size=256, shuffle=True, seed=0):
        batch["inputs"], batch["quad_x"]  # (256, inputs) float64, (256, modes) float32

Only one batch is in memory at a time: each is read from the file by a generator
(cvgen.readers.SampleReader), so datasets larger than memory stream. Needs only TensorFlow,
which cvgen already installs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from cvgen.readers import SampleReader

__all__ = ["dataset"]


def dataset(
    path: str | Path,
    outputs: list[str] | None = None,
    inputs: list[str] | None = None,
    split: str | None = None,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of a dataset.h5 (dicts of tensors, sample axis first: `index`, `circuit`,
    `inputs`, the selected outputs; see cvgen.torch.CvgenDataset for their meaning).

    `shuffle`: a new order every pass over the data, from `seed` and the pass number, so
    training runs repeat exactly. `split` names a part of the dataset's split.
    """
    reader = SampleReader(path, outputs=outputs, inputs=inputs, split=split)
    n_samples = len(reader)
    passes = iter(range(2**62))

    def batches():
        order = np.arange(n_samples)
        if shuffle:
            order = np.random.default_rng([seed, next(passes)]).permutation(n_samples)
        stop = n_samples - n_samples % batch_size if drop_remainder else n_samples
        for start in range(0, stop, batch_size):
            yield reader.read(order[start : start + batch_size])

    return tf.data.Dataset.from_generator(batches, output_signature=_signature(reader))


def _signature(reader: SampleReader) -> dict[str, tf.TensorSpec]:
    """The TensorSpec of every key of a batch."""
    spec = {
        "index": tf.TensorSpec((None,), tf.int64),
        "circuit": tf.TensorSpec((None,), tf.int64),
    }
    if reader.inputs:
        spec["inputs"] = tf.TensorSpec((None, len(reader.inputs)), tf.float64)
    for name in reader.outputs:
        spec[name] = tf.TensorSpec((None, *reader.shapes[name]), tf.as_dtype(reader.dtypes[name]))
    return spec

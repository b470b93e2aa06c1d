"""Array namespaces: the kernels are written once and run by numpy or by TensorFlow.

A kernel takes `xp` (one of the namespaces below) and calls only the methods listed here, with
numpy's semantics. Dtypes are given by name ("complex64", "float64", ...). numpy runs the
kernels eagerly and imports in ~0.05 s, which is what small states want; TensorFlow traces them
into one graph per batch shape (`xp.function`), uses several threads and a GPU, and costs ~2.2 s
to import, which pays off for large states only (see cvgen.engines.cost).

Python numbers are turned into arrays of the requested dtype directly: a float64 scalar must
never promote complex64 work to complex128, and TF must not round a complex128 constant
through float32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import numpy as np

__all__ = [
    "BACKENDS",
    "NUMPY",
    "NumpyArrays",
    "TensorflowArrays",
    "configure_tensorflow",
    "namespace",
    "tensorflow",
]

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")
BACKENDS = ("numpy", "tensorflow")
TF_MATH_NAMES = {
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctan2": "atan2",
}


class NumpyArrays:
    """numpy as a kernel namespace: eager, single-process, no tracing."""

    name = "numpy"

    def asarray(self, value, dtype: str):
        return np.asarray(value, dtype=dtype)

    def cast(self, x, dtype: str):
        return np.asarray(x).astype(dtype, copy=False)

    def numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def shape(self, x) -> tuple[int, ...]:
        return tuple(x.shape)

    def zeros(self, shape, dtype: str):
        return np.zeros(shape, dtype=dtype)

    def unit(self, size: int, batch: int, dtype: str, axis: int = 1):
        """`batch` copies of the first basis vector of length `size`, stacked along `axis`."""
        shape = (batch, size) if axis == 1 else (size, batch)
        out = np.zeros(shape, dtype=dtype)
        out[(0, slice(None)) if axis == 0 else (slice(None), 0)] = 1
        return out

    def arange(self, start: int, stop: int, dtype: str):
        return np.arange(start, stop, dtype=dtype)

    reshape = staticmethod(np.reshape)
    transpose = staticmethod(np.transpose)
    exp = staticmethod(np.exp)
    cos = staticmethod(np.cos)
    sin = staticmethod(np.sin)
    cosh = staticmethod(np.cosh)
    tanh = staticmethod(np.tanh)
    sqrt = staticmethod(np.sqrt)
    conj = staticmethod(np.conj)
    real = staticmethod(np.real)
    imag = staticmethod(np.imag)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    clip = staticmethod(np.clip)
    where = staticmethod(np.where)

    def stack(self, xs, axis: int = 0):
        return np.stack(xs, axis=axis)

    def concat(self, xs, axis: int = 0):
        return np.concatenate(xs, axis=axis)

    def pad(self, x, widths):
        return np.pad(x, widths)

    def take(self, x, indices, axis: int):
        return np.take(x, indices, axis=axis)

    def take_along(self, x, indices, axis: int):
        """x[..., indices[..., k], ...] along `axis`, leading axes matched (TF: batch_dims)."""
        return np.take_along_axis(x, indices, axis=axis)

    def sum(self, x, axis=None, keepdims: bool = False):
        return np.sum(x, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims: bool = False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def cumsum(self, x, axis: int = -1):
        return np.cumsum(x, axis=axis)

    def searchsorted(self, sorted_rows, values):
        """For each row of `sorted_rows` [..., K], the right insertion points of `values` [..., S]:
        how many of the row's entries are <= each value (exact, like tf.searchsorted)."""
        return np.sum(sorted_rows[..., None, :] <= values[..., :, None], axis=-1)

    def complex(self, re, im):
        dtype = np.result_type(re.dtype, im.dtype, np.complex64)
        out = np.empty(np.broadcast_shapes(re.shape, im.shape), dtype=dtype)
        out.real, out.imag = re, im
        return out

    def diag_embed(self, v):
        """Batched diagonal matrices [..., K, K] from vectors [..., K]."""
        out = np.zeros((*v.shape, v.shape[-1]), dtype=v.dtype)
        index = np.arange(v.shape[-1])
        out[..., index, index] = v
        return out

    def adjoint(self, x):
        return np.conj(np.swapaxes(x, -1, -2))

    def eigh(self, x):
        return np.linalg.eigh(x)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def math(self, name: str):
        """The elementwise function `name` (numpy's spelling: arcsin, not asin)."""
        return getattr(np, name)

    def spec(self, shape, dtype: str):
        """numpy needs no input signature."""
        return None

    def function(self, fn, signature=None):
        """Run `fn` as it is: numpy has nothing to trace."""
        return fn


class TensorflowArrays:
    """TensorFlow as a kernel namespace: `function` traces a kernel into one graph."""

    name = "tensorflow"

    def __init__(self, threads: int = 1):
        self.tf = _import_tensorflow(threads)

    def asarray(self, value, dtype: str):
        tf = self.tf
        if tf.is_tensor(value):
            return tf.cast(value, dtype)
        return tf.constant(np.asarray(value, dtype=dtype))

    def cast(self, x, dtype: str):
        return self.tf.cast(x, dtype) if self.tf.is_tensor(x) else self.asarray(x, dtype)

    def numpy(self, x) -> np.ndarray:
        return x.numpy() if self.tf.is_tensor(x) else np.asarray(x)

    def shape(self, x) -> tuple[int, ...]:
        return tuple(x.shape)

    def zeros(self, shape, dtype: str):
        return self.tf.zeros(shape, dtype)

    def unit(self, size: int, batch: int, dtype: str, axis: int = 1):
        tf = self.tf
        first = tf.zeros([batch], tf.int32)
        return tf.one_hot(first, size, axis=-1 if axis == 1 else 0, dtype=dtype)

    def arange(self, start: int, stop: int, dtype: str):
        return self.tf.range(start, stop, dtype=dtype)

    def reshape(self, x, shape):
        return self.tf.reshape(x, shape)

    def transpose(self, x, axes):
        return self.tf.transpose(x, axes)

    def exp(self, x):
        return self.tf.exp(x)

    def cos(self, x):
        return self.tf.cos(x)

    def sin(self, x):
        return self.tf.sin(x)

    def cosh(self, x):
        return self.tf.cosh(x)

    def tanh(self, x):
        return self.tf.tanh(x)

    def sqrt(self, x):
        return self.tf.sqrt(x)

    def conj(self, x):
        return self.tf.math.conj(x)

    def real(self, x):
        return self.tf.math.real(x)

    def imag(self, x):
        return self.tf.math.imag(x)

    def abs(self, x):
        return self.tf.abs(x)

    def maximum(self, x, y):
        return self.tf.maximum(x, y)

    def minimum(self, x, y):
        return self.tf.minimum(x, y)

    def clip(self, x, low, high):
        return self.tf.clip_by_value(x, low, high)

    def where(self, condition, x, y):
        return self.tf.where(condition, x, y)

    def stack(self, xs, axis: int = 0):
        return self.tf.stack(xs, axis=axis)

    def concat(self, xs, axis: int = 0):
        return self.tf.concat(xs, axis=axis)

    def pad(self, x, widths):
        return self.tf.pad(x, widths)

    def take(self, x, indices, axis: int):
        return self.tf.gather(x, indices, axis=axis)

    def take_along(self, x, indices, axis: int):
        rank = len(x.shape)
        axis = axis % rank
        if axis != rank - 1:
            raise ValueError("take_along supports the last axis only")
        return self.tf.gather(x, indices, batch_dims=rank - 1)

    def sum(self, x, axis=None, keepdims: bool = False):
        return self.tf.reduce_sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims: bool = False):
        return self.tf.reduce_max(x, axis=axis, keepdims=keepdims)

    def cumsum(self, x, axis: int = -1):
        return self.tf.cumsum(x, axis=axis)

    def searchsorted(self, sorted_rows, values):
        return self.tf.searchsorted(sorted_rows, values, side="right")

    def complex(self, re, im):
        return self.tf.complex(re, im)

    def diag_embed(self, v):
        return self.tf.linalg.diag(v)

    def adjoint(self, x):
        return self.tf.linalg.adjoint(x)

    def eigh(self, x):
        return self.tf.linalg.eigh(x)

    def broadcast_to(self, x, shape):
        return self.tf.broadcast_to(x, shape)

    def math(self, name: str):
        """The elementwise function numpy calls `name`, from tf.math."""
        return getattr(self.tf.math, TF_MATH_NAMES.get(name, name))

    def spec(self, shape, dtype: str):
        """The input signature entry of an array of this shape and dtype."""
        return self.tf.TensorSpec(shape, dtype)

    def function(self, fn, signature=None):
        """`fn` traced once into a graph for the given input signature."""
        return self.tf.function(fn, autograph=False, input_signature=signature)


NUMPY = NumpyArrays()
_tensorflow: TensorflowArrays | None = None


def tensorflow(threads: int = 1) -> TensorflowArrays:
    """The TensorFlow namespace, importing TF once per process with `threads` threads."""
    global _tensorflow
    if _tensorflow is None:
        _tensorflow = TensorflowArrays(threads)
    return _tensorflow


def configure_tensorflow(threads: int = 1):
    """The TensorFlow module, imported once with `threads` threads (see `tensorflow`)."""
    return tensorflow(threads).tf


def namespace(name: str, threads: int = 1):
    """The kernel namespace called `name` (one of BACKENDS)."""
    if name == "numpy":
        return NUMPY
    if name == "tensorflow":
        return tensorflow(threads)
    raise ValueError(f"backend {name!r} is unknown; choose one of {', '.join(BACKENDS)}")


def _import_tensorflow(threads: int):
    """Import TF with `threads` intra/inter-op threads, before its first op, start-up quiet.

    TF's native start-up lines (absl's pre-init warning, oneDNN and CUDA notices, a cuInit
    error on machines without a GPU) are written to fd 2 by C++ code, ignoring
    TF_CPP_MIN_LOG_LEVEL; they are silenced while TF imports and initialises its devices, and
    one log line says what was found instead. Python errors are still raised.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable in THREAD_VARIABLES:
        # numba reads its thread count once it has launched threads and refuses a new one on its
        # next configuration reload: leave it to a numba already imported (thewalrus, cvgen's
        # photon sampler), as changing it would break that process's next compilation.
        if variable != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[variable] = str(threads)
    with _native_stderr_silenced():
        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            log.warning(
                "TensorFlow was already initialised in this process; it keeps %d intra-op threads",
                tf.config.threading.get_intra_op_parallelism_threads(),
            )
        devices = [device.device_type for device in tf.config.list_logical_devices()]
    log.info("TensorFlow %s, %d threads, devices %s", tf.__version__, threads, devices)
    return tf


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 sent to /dev/null for the block (Python's sys.stderr included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

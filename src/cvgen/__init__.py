"""cvgen: reproducible HDF5 datasets from continuous-variable quantum circuits."""

from cvgen.errors import CvgenError

__version__ = "0.1.0"

__all__ = ["CvgenError", "__version__", "read_dataset"]


def read_dataset(path):
    """Read a built dataset's arrays and metadata as numpy (see `cvgen.dataset.read_dataset`)."""
    from cvgen.dataset import read_dataset as _read

    return _read(path)

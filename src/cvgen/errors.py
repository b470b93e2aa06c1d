"""The one exception type users see: its message is a single line naming problem and fix."""


class CvgenError(Exception):
    """A problem with the user's input or files, reported as one readable line."""


class DiskFullError(CvgenError):
    """A write failed for lack of space. HDF5's library state after a failed write is unfit
    for further use (its shutdown can crash the process), so the process ends right after
    reporting it."""

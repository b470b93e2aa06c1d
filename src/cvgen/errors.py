"""The one exception type users see: its message is a single line naming problem and fix."""


class CvgenError(Exception):
    """A problem with the user's input or files, reported as one readable line."""

"""The one exception type the command line turns into a clear one-line message."""


class WplError(Exception):
    """A user-facing error: bad input, a bad flag or a missing file, with the fix in the message."""

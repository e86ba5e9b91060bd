"""The one error type users see.

Anything that is the user's fault (a bad path, an unknown model name, an out-of-range
setting, a broken file) raises :class:`CenterNetError` with a one-line message that
names the value and what was expected. The command line prints that line and exits
with status 2, without a traceback.
"""


class CenterNetError(Exception):
    """A user-facing error: bad input, bad setting, missing file."""

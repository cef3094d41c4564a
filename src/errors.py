"""The one exception type for input a user can fix (a path, a config value, a missing run)."""


class UsageError(ValueError):
    """Bad input. `src.cli.main` prints its message as one line on stderr and exits with status 2,
    so the message must say what is wrong and what to do about it."""

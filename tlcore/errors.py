"""Exceptions with messages meant for users: what is wrong and how to fix it."""


class TransferLabError(Exception):
    """Base class for errors caused by user input (the CLI prints them as one line, exit code 2)."""


class DataError(TransferLabError):
    """A data set cannot be used as given."""


class ConfigError(TransferLabError):
    """A setting or name (backbone, strategy, demo...) is not valid."""


class Cancelled(Exception):
    """A run was cancelled by the user; not an error of the user's input."""


def first_line(exc: BaseException) -> str:
    """An unexpected error in one line: its type and the first line of its message."""
    detail = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__

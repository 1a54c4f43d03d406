"""Exceptions for invalid user input, which the CLI prints as one-line errors."""


class UsageError(ValueError):
    """An invalid option, value or input file; the message names it and the fix."""


class DataUnavailableError(UsageError):
    """A data set that is not on disk; the message states how to get it."""

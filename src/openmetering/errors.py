"""One error type for problems a user can fix: the CLI prints its message, not a traceback."""


class DesignError(Exception):
    """Bad input to a stage: says what is wrong and where."""

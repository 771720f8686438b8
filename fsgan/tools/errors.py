"""Errors the tools' library code raises for user mistakes; fsgan.tools.cli prints them as one line.

ToolError: a problem with an input (a file, a network); printed as 'Error: <message>', exit code 1.
OptionError: a bad option value; printed as "Error: Invalid value for '<option>': <message>", exit code 2,
the way click reports its own usage errors.
"""


class ToolError(Exception):
    """A user-facing problem found while working; the message names the file or option and what to do."""


class OptionError(ToolError):
    """A bad option value. `option` is the command-line option it came from (e.g. '--seeds'), or None."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option

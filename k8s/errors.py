"""The one error type for failures caused by the user's input.

The CLI prints each error as a single line and exits non-zero; a Python
traceback is only shown with `--debug`.
"""


# An error is one line: a line break inside a name or a message is shown escaped.
_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r"})


class UserError(Exception):
    """Bad input: a file, a line or an object the user can go and fix.

    Parameters:
        message: what is wrong, without the location prefix.
        file: the file the problem is in, if any.
        line: 1-based line in `file`.
        col: 1-based column in `line`.
        obj: the object concerned, as `kind/name`.
    """

    exit_code = 1

    def __init__(self, message, *, file=None, line=None, col=None, obj=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.obj = obj

    def __str__(self):
        where = ""
        if self.file:
            where = str(self.file)
            if self.line:
                where += f":{self.line}"
                if self.col:
                    where += f":{self.col}"
        parts = [p for p in (where, self.obj, self.message) if p]
        return ": ".join(str(p).translate(_ONE_LINE) for p in parts)


class UsageError(UserError):
    """The command line itself is wrong (exit status 2, like argparse)."""

    exit_code = 2


class UserErrors(UserError):
    """Several independent input errors reported at once, one line each."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__(str(self.errors[0]) if self.errors else "")

    def __str__(self):
        return "\n".join(str(e) for e in self.errors)


def raise_all(errors):
    """Raise the collected `errors`: nothing, the single error, or all of them."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise UserErrors(errors)

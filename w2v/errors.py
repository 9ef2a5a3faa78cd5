"""The user's errors: what they are, and how a foreign exception becomes one line of one.

Every entry point (w2v/cli.py) prints a W2VError as one line and exits non-zero, so a
module that meets a failure the user can fix raises W2VError with a message that says how.
"""
from __future__ import annotations


class W2VError(Exception):
    """An error the user can fix (bad path, bad value, empty corpus). Printed as one line.

    The entry points print it as "{kind}: {message}" and exit with exit_code (w2v/cli.py).
    """

    kind = "error"
    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, or its type's name when it has none.

    Libraries (datasets, tokenizers, torch.distributed, the unpickler) raise messages of many
    lines, and some raise none at all; a W2VError built from one must still be one line.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__

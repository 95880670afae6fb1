"""What every command-line tool (``tools/*.py``) shares: a user's mistake ends in one line and exit status 2.

A tool's ``main(argv)`` raises :class:`UsageError` for a mistake of the user's (a missing file, an unknown name,
a bad option value, a missing dataset); :func:`run` prints it as argparse prints a bad option,
``tool.py: error: <message>``, and returns 2, without a traceback. Any other exception is a bug and propagates
with its traceback::

    from mmmsvmamba.cli import UsageError, run

    def main(argv=None):
        ...

    if __name__ == '__main__':
        sys.exit(run(main))

:func:`usage_errors` turns the exceptions of one step that can only mean a mistake of the user's (e.g. the
``FileNotFoundError`` of reading the config named on the command line) into :class:`UsageError`.

This module imports neither torch nor mmengine (``import mmmsvmamba`` brings in torch only), so that every tool
can use it.
"""
import argparse
import contextlib
import os
import sys
from typing import Callable, Iterator, Optional, Sequence, Type


class UsageError(Exception):
    """A mistake of the user's, reported as one line naming it (no traceback) with exit status 2."""


def run(main: Callable[[Optional[Sequence[str]]], Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """``main(argv)``'s exit status (0 for None); a :class:`UsageError` is printed as one line and gives 2."""
    try:
        return main(argv) or 0
    except UsageError as err:
        print(f'{os.path.basename(sys.argv[0])}: error: {err}', file=sys.stderr)
        return 2


@contextlib.contextmanager
def usage_errors(*types: Type[BaseException]) -> Iterator[None]:
    """Inside the block, an exception of one of ``types`` is re-raised as :class:`UsageError` (same message)."""
    try:
        yield
    except types as err:
        raise UsageError(str(err)) from err


def existing_file(what: str, path: Optional[str]) -> Optional[str]:
    """``path`` if it is a file (or None); else a :class:`UsageError` naming ``what`` and the path."""
    if path is not None and not os.path.isfile(path):
        raise UsageError(f'{what} not found: {path}')
    return path


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number above 0 (argparse reports anything else as a bad option value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{value} is not above 0')
    return value

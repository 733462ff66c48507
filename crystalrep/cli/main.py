"""The ``crystalrep`` command: datasets, embeddings, diagnostics.

Every command takes ``--json`` for machine-readable output. Bad input exits with code 2 and
one clear line on stderr (control characters removed, at most 300 characters, whatever a
library echoed); progress bars go to stderr so ``--json`` output stays parseable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crystalrep.datasets import DatasetError
from crystalrep.structures import StructureError

USER_ERRORS = (DatasetError, StructureError, ValueError, OSError)
NAME_OPTIONS = ("name", "encoder", "dataset", "job_id")  # values that become names or paths


def one_line(text: str) -> str:
    """``text`` as one printable line of at most ``max_message_chars`` characters (an ellipsis marks a cut)."""
    from crystalrep.limits import Limits, clean_message, current_limits

    try:
        limit = current_limits().max_message_chars
    except ValueError:  # a malformed override is itself the error being printed
        limit = Limits().max_message_chars
    return clean_message(text, limit)


def check_names(args: argparse.Namespace) -> None:
    r"""Refuse a name-like option holding a line break or control character (``--name $'abc\n'``)."""
    for key in NAME_OPTIONS:
        value = getattr(args, key, None)
        if isinstance(value, str) and not value.isprintable():
            raise ValueError(f"{key.replace('_', ' ')} {value[:60]!r} contains a line break or control character.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command: each group registers its own subcommands."""
    from crystalrep.cli import data, embeddings, explore, lecture, pretrain, study

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser = argparse.ArgumentParser(prog="crystalrep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (data, pretrain, embeddings, explore, study, lecture):
        group.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        check_names(args)
        code = args.func(args)  # handlers return None, or an exit code (e.g. a failed check)
    except USER_ERRORS as exc:
        print(one_line(f"crystalrep: {str(exc).strip() or type(exc).__name__}"), file=sys.stderr)
        return 2
    return int(code or 0)

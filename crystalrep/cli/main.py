"""The ``crystalrep`` command: datasets, embeddings, diagnostics.

Every command takes ``--json`` for machine-readable output. Bad input exits with code 2 and
one clear line on stderr; progress bars go to stderr so ``--json`` output stays parseable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crystalrep.datasets import DatasetError
from crystalrep.structures import StructureError

USER_ERRORS = (DatasetError, StructureError, ValueError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command: each group registers its own subcommands."""
    from crystalrep.cli import data, embeddings, explore, pretrain

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser = argparse.ArgumentParser(prog="crystalrep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (data, pretrain, embeddings, explore):
        group.add_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        code = args.func(args)  # handlers return None, or an exit code (e.g. a failed check)
    except USER_ERRORS as exc:
        print(f"crystalrep: {str(exc).strip() or type(exc).__name__}", file=sys.stderr)
        return 2
    return int(code or 0)

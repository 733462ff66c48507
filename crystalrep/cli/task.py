"""The child side of a background task: ``python -m crystalrep.cli.task <folder>``.

Runs the same :func:`crystalrep.cli.main.main` as ``python -m crystalrep`` on the argv in the
task's ``spec.json``, then records its exit code in ``exit.json``: a detached process's code is
otherwise lost when the parent (a Streamlit server) restarts. It lives in the CLI package because
it calls the CLI; :mod:`crystalrep.jobs.background` only starts it, by module name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from crystalrep.cli.main import main
from crystalrep.runs import read_json
from crystalrep.store import atomic_write_json


def run_task(folder: Path) -> int:
    """Run the CLI on ``folder/spec.json``'s argv and write ``folder/exit.json``; returns the code."""
    code = 1
    try:
        argv = read_json(folder / "spec.json").get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            print(f"crystalrep: {folder / 'spec.json'} holds no argument list.", file=sys.stderr)
            code = 2
        else:
            code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    finally:  # also on an unexpected exception, whose traceback Python then prints to log.txt
        sys.stdout.flush()
        sys.stderr.flush()
        atomic_write_json(folder / "exit.json", {"returncode": code, "finished": time.time()})
    return code


if __name__ == "__main__":
    sys.exit(run_task(Path(sys.argv[1])))

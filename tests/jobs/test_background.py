"""Background tasks: a real detached CLI run per key, its state read back from files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from crystalrep.jobs import background
from crystalrep.jobs.background import output, start, state, task_dir
from crystalrep.store import atomic_write_json

WAIT_S = 60.0  # a cold interpreter on a busy 2-core machine


def _wait(key: str) -> background.TaskState:
    deadline = time.monotonic() + WAIT_S
    while (s := state(key)).running:
        assert time.monotonic() < deadline, f"task {key} still running after {WAIT_S} s: {s}"
        time.sleep(0.1)
    return s


def test_absent_task_and_bad_keys() -> None:
    assert state("never-started").state == "absent"
    for bad in ("", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValueError, match="task key"):
            task_dir(bad)


def test_a_fast_command_runs_to_done_and_keeps_its_stdout() -> None:
    start(["data", "list", "--json"], key="list")
    assert state("list").state in ("running", "done")
    done = _wait("list")
    assert done.state == "done" and done.returncode == 0
    assert done.seconds is not None and done.seconds >= 0
    assert isinstance(json.loads(output("list")), list)
    spec = json.loads((task_dir("list") / "spec.json").read_text())
    assert spec["argv"] == ["data", "list", "--json"]


def test_a_failing_command_reports_its_error_line() -> None:
    start(["data", "show", "no-such-dataset"], key="bad")
    failed = _wait("bad")
    assert failed.state == "failed" and failed.returncode == 2
    assert "no-such-dataset" in failed.message
    start(["data", "nonsense-verb"], key="usage")  # argparse exits through SystemExit
    usage = _wait("usage")
    assert usage.state == "failed" and usage.returncode == 2 and "invalid choice" in usage.message


def test_a_running_key_is_not_started_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = task_dir("busy")
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"argv": ["data", "list"], "started": time.time()})
    atomic_write_json(folder / "pid.json", {"pid": os.getpid(), "ticks": background._start_ticks(os.getpid())})
    assert state("busy").running

    def no_spawn(*args: object, **kwargs: object) -> None:
        raise AssertionError("a second process was started for a running key")

    monkeypatch.setattr(subprocess, "Popen", no_spawn)
    start(["data", "list"], key="busy")
    assert json.loads((folder / "pid.json").read_text())["pid"] == os.getpid()


def test_a_real_double_start_spawns_one_process() -> None:
    start(["data", "list", "--json"], key="twice")
    first = json.loads((task_dir("twice") / "pid.json").read_text())["pid"]
    start(["data", "list", "--json"], key="twice")  # the interpreter is still starting: running
    assert json.loads((task_dir("twice") / "pid.json").read_text())["pid"] == first
    assert _wait("twice").state == "done"
    start(["data", "list", "--json"], key="twice")  # finished: a new run replaces it
    assert json.loads((task_dir("twice") / "pid.json").read_text())["pid"] != first
    assert _wait("twice").state == "done"


def test_a_vanished_process_without_exit_record_is_failed() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = task_dir("killed")
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"argv": ["data", "list"], "started": time.time() - 5})
    atomic_write_json(folder / "pid.json", {"pid": int(dead.stdout), "ticks": 1})
    (folder / "log.txt").write_text("projecting:  40%|####      | 4/10\r")
    s = state("killed")
    assert s.state == "failed" and s.returncode is None
    assert "without reporting a result" in s.message and "4/10" in s.message


def test_a_start_that_never_recorded_its_pid_expires() -> None:
    folder = task_dir("limbo")
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"argv": [], "started": time.time()})
    assert state("limbo").running
    atomic_write_json(folder / "spec.json", {"argv": [], "started": time.time() - background.STARTING_GRACE_S - 1})
    assert state("limbo").state == "failed"



def test_stop_all_ends_a_running_task():
    import subprocess
    import time

    from crystalrep.jobs import background
    from crystalrep.store import atomic_write_json

    folder = background.task_dir("sleeper")
    folder.mkdir(parents=True)
    # a stand-in for `python -m crystalrep.cli.task <folder>`: its command line names the folder
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(folder)], start_new_session=True)
    atomic_write_json(folder / "spec.json", {"argv": ["sleep"], "key": "sleeper", "started": time.time()})
    atomic_write_json(folder / "pid.json", {"pid": proc.pid, "ticks": background._start_ticks(proc.pid)})
    assert background.state("sleeper").running
    assert background.stop_all() == ["sleeper"]
    assert proc.wait(timeout=10) != 0
    assert background.stop_all() == []


def test_stop_never_signals_a_process_that_is_not_the_task():
    folder = background.task_dir("foreign")
    folder.mkdir(parents=True)
    foreign = subprocess.Popen(["sleep", "60"], start_new_session=True)  # alive, pid and ticks right, not ours
    try:
        atomic_write_json(folder / "spec.json", {"argv": [], "key": "foreign", "started": time.time()})
        atomic_write_json(folder / "pid.json", {"pid": foreign.pid, "ticks": background._start_ticks(foreign.pid)})
        assert background.state("foreign").running
        assert background.stop("foreign") is False and background.stop_all() == []
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


@pytest.mark.parametrize("pid_json", [{"pid": "abc"}, {"pid": -1, "ticks": 0}, {"pid": True}, {"pid": 1, "ticks": 0},
                                      {"pid": 2**40}, []])
def test_malformed_pid_files_are_not_running_and_never_signalled(pid_json):
    folder = task_dir("odd")
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"argv": [], "started": time.time() - 2 * background.STARTING_GRACE_S})
    atomic_write_json(folder / "pid.json", pid_json)
    assert state("odd").state == "failed" and background.stop("odd") is False


@pytest.mark.parametrize("exit_json", [{"returncode": "abc", "finished": "x"}, {"returncode": None}, {"returncode": True}])
def test_malformed_exit_files_are_failed_not_tracebacks(exit_json):
    folder = task_dir("odd-exit")
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"argv": [], "started": "yesterday"})
    atomic_write_json(folder / "exit.json", exit_json)
    assert state("odd-exit").state == "failed"

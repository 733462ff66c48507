"""``crystalrep data import`` options: --workers N and --ray [ADDRESS] reach the streaming import."""

from __future__ import annotations

from typing import Any

import pytest

from crystalrep.cli.main import main


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def fake(path: str, **kwargs: Any) -> Any:
        seen.append({"path": path, **kwargs})
        raise SystemExit(0)  # the options are what this test is about

    monkeypatch.setattr("crystalrep.importers.stream.import_streaming", fake)
    return seen


@pytest.mark.parametrize(("argv", "workers", "ray"), [
    ([], None, None),
    (["--workers", "3"], 3, None),
    (["--ray"], None, "local"),
    (["--ray", "10.0.0.5:6379"], None, "10.0.0.5:6379"),
])
def test_options_reach_the_import(calls: list[dict[str, Any]], argv: list[str], workers: int | None, ray: str | None) -> None:
    with pytest.raises(SystemExit):
        main(["data", "import", "x.csv", *argv, "--name", "n", "--quiet"])
    assert calls == [{"path": "x.csv", "name": "n", "overwrite": False, "workers": workers, "ray": ray, "progress": None}]


def test_a_worker_count_below_one_is_refused(calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "import", "x.csv", "--name", "n", "--workers", "0"])
    assert "at least 1" in capsys.readouterr().err and calls == []

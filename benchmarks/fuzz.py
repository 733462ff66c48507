"""Long fuzz run of the structure reader: ``python -m benchmarks.fuzz --cases 10000 --seed 0``.

Cases come from ``tests/fuzzing.py``, the mutators of the CI smoke test
(``tests/test_fuzz_structures.py``), here also seeded with the small ../shared cif_zoo files when
present. Each case runs in a forked child process, one after the other, so that a crash or a
hang is counted instead of ending the run: the child rebuilds case ``k`` from ``(seed, k)``,
parses it with ``read_structures`` and reports its outcome, CPU and wall time, and peak RSS
growth; a child that dies is a crash, one silent for ``--kill-after`` seconds is a hang, and
both are replaced by a fresh fork.

Outcomes: accepted, clean error (a StructureError of one printable line of at most 300
characters naming the case), bad message (a StructureError that is not), foreign exception,
slow (over ``--slow`` seconds of CPU time; wall time is reported too, but on a shared machine it
is several times the CPU time), hang, blow-up (peak RSS growth over ``--rss-mb``), crash. The
report is printed and, with ``--out``, written as JSON; ``--start`` splits a long run in parts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _child(conn: Connection, seed: int, zoo: Path | None) -> None:
    """Run the cases the parent sends, one at a time, until it sends None."""
    from crystalrep.structures import StructureError, read_structures
    from tests.fuzzing import make_case, peak_rss_mb, reset_peak_rss, rss_mb

    while True:
        try:
            k = conn.recv()
        except EOFError:  # the parent is gone
            return
        if k is None:
            return
        label, text = make_case(seed, k, zoo=zoo)
        name = f"case{k}.cif"
        before = rss_mb()
        reset_peak_rss()
        wall, cpu = time.perf_counter(), time.process_time()
        result: dict[str, Any] = {"k": k, "label": label, "bytes": len(text)}
        try:
            structures = read_structures(name, text=text)
            result.update(outcome="accepted", atoms=sum(len(s) for s in structures))
        except StructureError as exc:
            message = str(exc)
            clean = message.startswith(f"{name}: ") and len(message) <= 300 and message.isprintable()
            result.update(outcome="clean error" if clean else "bad message", message=message[:400])
        except Exception as exc:  # noqa: BLE001 - counting foreign exceptions is the point
            result.update(outcome="foreign exception", message=f"{type(exc).__name__}: {str(exc)[:300]}")
        result.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, rss_mb=peak_rss_mb() - before)
        try:
            conn.send(result)
        except BrokenPipeError:
            return


class _Runner:
    """A forked child that runs cases; replaced whenever it crashes or hangs."""

    def __init__(self, seed: int, zoo: Path | None) -> None:
        self.seed, self.zoo, self.proc, self.conn = seed, zoo, None, None

    def start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child_end = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child_end, self.seed, self.zoo), daemon=True)
        self.proc.start()
        child_end.close()

    def run(self, k: int, kill_after: float) -> dict[str, Any]:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send(k)
        try:
            if self.conn.poll(kill_after):
                return self.conn.recv()
        except (EOFError, ConnectionResetError):
            pass
        hung = self.proc.is_alive()
        if hung:
            self.proc.kill()
        self.proc.join()
        result = {"k": k, "outcome": "hang" if hung else "crash", "wall": kill_after if hung else None,
                  "message": None if hung else f"exit code {self.proc.exitcode}"}
        self.proc = None
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(5)


def run(cases: int, seed: int, *, start: int = 0, zoo: Path | None, slow: float, rss_limit: float,
        kill_after: float) -> dict[str, Any]:
    """Run cases ``start`` to ``start + cases - 1``; return counts, timings and examples of each outcome."""
    import crystalrep.structures  # noqa: F401 - imported before forking, so every child starts warm
    from tests.fuzzing import make_case, seed_cifs

    seed_cifs(zoo)
    make_case(seed, 0, zoo=zoo)
    runner, results = _Runner(seed, zoo), []
    started = time.perf_counter()
    try:
        for k in range(start, start + cases):
            results.append(runner.run(k, kill_after))
    finally:
        runner.stop()
    counts = Counter(r["outcome"] for r in results)
    walls = sorted(r["wall"] for r in results if r.get("wall") is not None)
    cpus = sorted(r["cpu"] for r in results if r.get("cpu") is not None)
    rss = [r.get("rss_mb", 0.0) for r in results]
    over = {"slow (CPU)": [r for r in results if (r.get("cpu") or 0) > slow],
            "slow (wall)": [r for r in results if (r.get("wall") or 0) > slow],
            "blow-up": [r for r in results if r.get("rss_mb", 0) > rss_limit]}
    kinds = Counter(re.sub(r"\d[\d,.e+-]*", "#", r["message"].split(": ", 1)[-1])
                    for r in results if r["outcome"] == "clean error")
    examples = {name: [f"{r.get('label', r['k'])}: {r.get('message')}" for r in group[:5]]
                for name, group in [*((o, [r for r in results if r["outcome"] == o]) for o in counts
                                      if o not in ("accepted", "clean error")), *over.items()]}
    return {
        "cases": cases, "first_case": start, "seed": seed, "zoo_seeds": zoo is not None,
        "seconds": round(time.perf_counter() - started, 1),
        "counts": {**dict(counts), f"CPU > {slow:g} s": len(over["slow (CPU)"]),
                   f"wall > {slow:g} s": len(over["slow (wall)"]), f"blow-ups > {rss_limit:g} MB": len(over["blow-up"])},
        "wall_s": {"median": _pick(walls, 0.5), "p99": _pick(walls, 0.99), "max": _pick(walls, 1.0)},
        "cpu_s": {"median": _pick(cpus, 0.5), "p99": _pick(cpus, 0.99), "max": _pick(cpus, 1.0)},
        "peak_rss_growth_mb_max": round(max(rss, default=0.0), 1),
        "examples": examples,
        "common_refusals": dict(kinds.most_common(25)),
    }


def _pick(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case number (runs can be split)")
    parser.add_argument("--slow", type=float, default=2.0, help="seconds (CPU, and wall) counted as too slow")
    parser.add_argument("--rss-mb", type=float, default=500.0, help="peak RSS growth counted as a blow-up")
    parser.add_argument("--kill-after", type=float, default=60.0, help="seconds before a silent child is killed")
    parser.add_argument("--no-zoo", action="store_true", help="only the synthetic seeds")
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # tests.fuzzing, when run from elsewhere
    zoo = None if args.no_zoo else ROOT.parent / "shared" / "data" / "cif_zoo"
    report = run(args.cases, args.seed, start=args.start, zoo=zoo if zoo and zoo.is_dir() else None, slow=args.slow,
                 rss_limit=args.rss_mb, kill_after=args.kill_after)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    # wall time on a shared machine is several times CPU time, so it is reported, not judged
    bad = {k: v for k, v in report["counts"].items() if k not in ("accepted", "clean error") and not k.startswith("wall") and v}
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

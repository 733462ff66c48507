"""The import picture of ARCHITECTURE.md, checked from the code: arrows only point down, no cycles.

Every ``import`` in ``crystalrep/`` (function-level ones included: a lazy import is still a
dependency) goes to a package on a lower floor, or stays inside its own package. A new package
must be given a floor here and in ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# top floor first; each entry is a package (folder) or a module (file) directly under crystalrep/
FLOORS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli",),
    ("checklist", "lecture", "exports", "study"),
    ("plots",),
    ("analysis",),
    ("embed", "jobs", "sources"),
    ("importers", "pretrain"),
    ("encoders",),
    ("datasets", "graphs", "checkpoint", "runs", "transforms", "device", "cluster"),
    ("structures", "store"),
    ("limits",),
]
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "crystalrep").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """``(target module, imported names)`` for every import of crystalrep code in one module."""
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_pkg else name.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, []) if sub in modules else (base, [alias.name]))
    out = []
    for target, names in found:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target.split(".")[0] == "crystalrep" and target in modules and target != name:
            out.append((target, names))
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, list[tuple[str, list[str]]]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_package_has_a_floor() -> None:
    units = {_unit(m) for m in _modules()} - {""}
    assert units <= set(FLOOR), f"give these a floor in FLOORS and ARCHITECTURE.md: {sorted(units - set(FLOOR))}"


def test_arrows_only_point_down() -> None:
    upward = []
    for source, targets in _graph().items():
        for target, names in targets:
            if target == "crystalrep":
                if names != ["__version__"]:
                    upward.append(f"{source} -> crystalrep (the public face) {names}")
                continue
            a, b = _unit(source), _unit(target)
            if a == "" or a == b:
                continue
            if FLOOR[b] <= FLOOR[a]:  # floors are numbered from the top
                upward.append(f"{source} (floor {FLOOR[a]}) -> {target} (floor {FLOOR[b]})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_no_import_cycles() -> None:
    graph = {m: sorted({t for t, _ in ts if t != "crystalrep"}) for m, ts in _graph().items()}
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state[nxt] == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif state[nxt] == 0:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_library_never_imports_the_dashboard() -> None:
    bad = []
    for path in (ROOT / "crystalrep").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("streamlit", "ui", "views", "pages")]
    assert not bad, bad

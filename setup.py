"""The one compiled part: the per-cell neighbour-search loop (crystalrep/graphs/_cells.c).

Optional: where no C compiler is found the package installs without it and the same loop runs
in Python (slower on batches of small cells, same arrays). No fused multiply-adds: the cell
check must round exactly as its Python twin (neighbors.search_problem). The rest is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("crystalrep.graphs._cells", ["crystalrep/graphs/_cells.c"], optional=True,
                             extra_compile_args=["-O2", "-ffp-contract=off"])])

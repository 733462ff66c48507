"""Analyses of embeddings: projections, probes, retrieval, clusters and invariance diagnostics.

Import the submodules directly (``from crystalrep.analysis.diagnostics import invariance``);
this package imports nothing so that ``import crystalrep.analysis`` stays light.
"""

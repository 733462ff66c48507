"""The lecture's computations, from analogies to preparing every section ahead of a talk.

Analogies, the analogy tables (examples), cached runs, the result sentences, the badges printed
beside probe numbers (verdicts), and the background preparation of all sections.

Nothing here draws; :mod:`crystalrep.plots.lecture` and the Lecture page show what these return.
"""

"""The lecture's computations: latent analogies, cached demo runs, and the verdicts printed beside numbers.

Nothing here draws; :mod:`crystalrep.plots.lecture` and the Lecture page show what these return.
"""

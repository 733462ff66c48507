"""Work that outlives a page view: pretraining jobs and short background tasks.

Both run our own CLI in a detached process started by :func:`crystalrep.jobs.procs.launch` and
report through files in their run folder (:mod:`crystalrep.runs`), written atomically, so a
browser refresh or a server restart loses nothing. Nothing here imports the trainer or the CLI.
"""

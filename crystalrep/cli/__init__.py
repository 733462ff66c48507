"""The ``crystalrep`` command line: :mod:`~crystalrep.cli.main` registers one module per command group.

Groups: :mod:`~crystalrep.cli.data`, :mod:`~crystalrep.cli.embeddings`, :mod:`~crystalrep.cli.explore`,
:mod:`~crystalrep.cli.pretrain`; they share :mod:`~crystalrep.cli.output`. :mod:`~crystalrep.cli.task`
is the child side of a background task.
"""

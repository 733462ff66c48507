"""Where datasets come from: the built-in default builder and the public benchmark fetcher.

Nothing is imported here, so ``import crystalrep.sources`` stays light; use
``crystalrep.sources.fetch`` (``fetch``, ``SOURCES``) and ``crystalrep.sources.default``.
"""

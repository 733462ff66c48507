"""Run an encoder over a dataset in shards -> the store (here, on a GPU, or on a Ray cluster).

The store key is ``content_key({dataset fingerprint, encoder fingerprint})``: the same crystals
and the same encoder (code, weights, config) always map to the same artifact, written in one
atomic step after the last shard. Finished shards are kept on disk until then, so a killed run
resumes from them (:mod:`crystalrep.embed.precompute`); :mod:`crystalrep.embed.remote` fans the
shards out to Ray actors, one model load per actor.
"""

from __future__ import annotations

from crystalrep.embed.core import (
    EMBEDDINGS_KIND,
    SMALL_QUERY,
    embed_structures,
    embedding_key,
    library_versions,
    load_embedding,
)
from crystalrep.embed.precompute import embed_dataset
from crystalrep.embed.shards import DEFAULT_BATCH_ATOMS, DEFAULT_SHARD_ROWS

__all__ = [
    "DEFAULT_BATCH_ATOMS",
    "DEFAULT_SHARD_ROWS",
    "EMBEDDINGS_KIND",
    "SMALL_QUERY",
    "embed_dataset",
    "embed_structures",
    "embedding_key",
    "library_versions",
    "load_embedding",
]

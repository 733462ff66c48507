"""CGCNN's embedding pass with every symmetry-repeated edge computed once.

A gated convolution's message on edge ``(i, j, d)`` depends only on the centre's features, the
neighbour's features and the distance ``d``. In a periodic cell many edges repeat exactly: an
atom sees the same neighbour through several images at the same distance (a cubic cell's six
faces, say). :func:`group_edges` merges edges with the same centre, neighbour and float32
distance into one edge that carries their count, so a message is computed once and weighted by
its multiplicity (on the perov_5 set, 322k edges become 89k). Distances repeat even more, so the
radial basis and every layer's edge projection (one matrix product for all layers) are taken
once per distinct distance and gathered; the atom projections are summed once per
(centre, neighbour) pair. The function is the model's own: results equal
:meth:`crystalrep.encoders.cgcnn.CGCNN.forward` up to float rounding (the tests compare it with
the ``propagate`` path). Inference only: training keeps ``forward``.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from crystalrep.encoders.cgcnn import CGCNN, GatedConv

__all__ = ["EdgeGroups", "embed_compact", "group_edges"]


class EdgeGroups(NamedTuple):
    """Edges merged by (centre, neighbour, distance), with their shared parts numbered.

    Attributes:
        pair_centre: Centre atom of each distinct (centre, neighbour) pair ``[P]``.
        pair_neighbor: Neighbour atom of each pair ``[P]``.
        distances: The distinct distances ``[D]``, ascending.
        pair: Pair of each merged edge ``[M]`` (merged edges are sorted by centre).
        distance: Index into ``distances`` of each merged edge ``[M]``.
        centre: Centre atom of each merged edge ``[M]``.
        multiplicity: How many edges each merged edge stands for ``[M]``.
    """

    pair_centre: Tensor
    pair_neighbor: Tensor
    distances: Tensor
    pair: Tensor
    distance: Tensor
    centre: Tensor
    multiplicity: Tensor


def group_edges(edge_index: Tensor, distance: Tensor, n_atoms: int) -> EdgeGroups:
    """Merge the edges ``edge_index [2, E]`` (row 0 the centre) whose centre, neighbour and distance agree.

    Distances are compared exactly, as the model sees them, so merged edges have identical inputs.
    """
    centre, neighbor = edge_index
    pairs, pair_of_edge = torch.unique(centre * n_atoms + neighbor, return_inverse=True)
    distances, distance_of_edge = torch.unique(distance, return_inverse=True)
    n_distances = max(len(distances), 1)
    merged, count = torch.unique(pair_of_edge * n_distances + distance_of_edge, return_counts=True)
    pair = torch.div(merged, n_distances, rounding_mode="floor")
    pair_centre = torch.div(pairs, n_atoms, rounding_mode="floor")
    return EdgeGroups(
        pair_centre=pair_centre, pair_neighbor=pairs - pair_centre * n_atoms, distances=distances,
        pair=pair, distance=merged - pair * n_distances, centre=pair_centre.index_select(0, pair), multiplicity=count,
    )


def embed_compact(model: CGCNN, z: Tensor, edge_index: Tensor, distance: Tensor, index: Tensor,
                  n_crystals: int) -> Tensor:
    """``model``'s crystal embeddings ``[n_crystals, out_dim]``, each repeated edge computed once.

    Args:
        model: The network (its weights are read, never changed).
        z: Atomic numbers ``[N]``.
        edge_index: Directed edges ``[2, E]``, row 0 the centre (as in :mod:`crystalrep.graphs`).
        distance: Edge lengths ``[E]`` in Å.
        index: Crystal of each atom ``[N]``.
        n_crystals: Number of crystals.

    Raises:
        ValueError: For an atomic number beyond the model's element table.
    """
    with torch.inference_mode():
        z = z.long()
        if z.numel() and int(z.max()) > model.config.max_z:
            raise ValueError(f"Atomic numbers above {model.config.max_z} are not supported.")
        convs = [cast(GatedConv, conv) for conv in model.convs]
        width = 2 * model.config.hidden
        groups = group_edges(edge_index, distance.to(model.embedding.weight.dtype), len(z))
        # every layer's edge projection of every distinct distance in one product
        projected = model.rbf(groups.distances) @ torch.cat([conv.lin_edge.weight for conv in convs]).T
        projected = projected.view(len(groups.distances), len(convs), width).transpose(0, 1).contiguous()
        weight = model.rbf.envelope(groups.distances).index_select(0, groups.distance)
        weight = weight.mul_(groups.multiplicity.to(weight.dtype))[:, None]
        x = model.embedding(z)
        for layer, conv in enumerate(convs):
            pairs = conv.lin_centre(x).index_select(0, groups.pair_centre)
            pairs = pairs.add_(conv.lin_neighbor(x).index_select(0, groups.pair_neighbor))
            hidden = pairs.index_select(0, groups.pair).add_(projected[layer].index_select(0, groups.distance))
            gate, core = hidden.chunk(2, dim=-1)
            messages = torch.sigmoid(gate).mul_(weight).mul_(F.softplus(core))
            summed = messages.new_zeros(len(z), conv.channels).index_add_(0, groups.centre, messages)
            x = conv.norm(x + conv.scale * summed)
        return model.readout(x, index, n_crystals)

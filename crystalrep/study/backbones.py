"""The encoders the study compares: a backbone (readout) × an initialisation × a seed.

``random`` is the untrained network at the seed (exactly the starting point of that seed's
pretraining run). A pretext task's encoder is the last checkpoint of its pretraining job.

Pretraining jobs train today's cgcnn (mean readout): a job spec carries only
:class:`~crystalrep.pretrain.PretrainConfig`. The Set2Set backbone therefore takes the
job's element table and convolutions and adds a Set2Set readout and head initialised at the seed.
For denoising and masking this is the same network pretraining with Set2Set would give: both
losses are computed from per-atom features (``encode_nodes``), so no gradient ever reaches a
readout. For contrastive it is not: InfoNCE trains through the readout, and this Set2Set readout
starts untrained (the fine-tune then trains it end to end; the linear probe sees it random).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

__all__ = ["BACKBONES", "RANDOM", "build_encoder"]

BACKBONES: tuple[str, ...] = ("mean", "set2set")
RANDOM = "random"
_READOUT_PARTS = ("set2set.", "head.")


def build_encoder(backbone: str, init: str, seed: int, checkpoint: Path | None = None) -> CGCNNEncoder:
    """The encoder of one cell of the grid.

    Args:
        backbone: ``"mean"`` or ``"set2set"`` (the readout).
        init: ``"random"`` or the pretext task whose checkpoint is given.
        seed: Initialisation seed (for a checkpoint: of the fresh Set2Set readout and head).
        checkpoint: The pretraining job's last ``kind="cgcnn"`` checkpoint (``None`` for random).

    Raises:
        ValueError: Unknown backbone, or a checkpoint missing for a task / given for random.
    """
    from crystalrep.checkpoint import load_checkpoint
    from crystalrep.encoders.cgcnn import build_cgcnn, config_from_dict
    from crystalrep.encoders.cgcnn_encoder import CHECKPOINT_KIND, CGCNNEncoder

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONES)}.")
    if init == RANDOM:
        if checkpoint is not None:
            raise ValueError(f"init {init!r} needs no checkpoint.")
        return CGCNNEncoder.random(seed=seed, readout=backbone)
    if checkpoint is None:
        raise ValueError(f"init {init!r} needs a checkpoint.")
    if backbone == "mean":
        return CGCNNEncoder.from_checkpoint(checkpoint)
    ckpt = load_checkpoint(checkpoint, kind=CHECKPOINT_KIND)
    config = config_from_dict({**ckpt.config, "readout": backbone})
    model = build_cgcnn(config, seed=seed)
    state = model.state_dict()
    state.update({k: v for k, v in ckpt.state_dict.items() if not k.startswith(_READOUT_PARTS)})
    model.load_state_dict(state, strict=True)
    text = (f"cgcnn with a Set2Set readout: element table and convolutions from checkpoint {ckpt.id} "
            f"({init}, seed {ckpt.meta.get('seed')}), Set2Set readout and head initialised at seed {seed}.")
    encoder = CGCNNEncoder(model.eval(), name=f"cgcnn-{backbone}@{ckpt.id}", description=text)
    encoder.checkpoint_meta = ckpt.meta
    return encoder

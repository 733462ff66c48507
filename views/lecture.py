"""Lecture: four guided demonstrations of what a crystal embedding does and does not know, and the CDSSL study.

The page holds the lecturer's text; each section's results are drawn by :mod:`ui.lecture_sections`
once its Run button has been pressed, or at once when "prepare all sections" has stored them.
Presenter mode shows one section per screen in projector-sized text.
"""

import streamlit as st

from ui import lecture as lc
from ui import lecture_sections as sections
from ui import state

INVARIANCE = (
    "A crystal has no preferred orientation, origin, atom order or cell. Rotating it, shifting the origin, "
    "relabelling the atoms or writing it as a 2×2×2 supercell changes the file, not the crystal, so a sound "
    "embedding must not move: the relative change ‖z(Tx) − z(x)‖ / ‖z(x)‖ should stay below 10⁻⁴ (float32 "
    "rounding). A 0.05 Å thermal rattle *is* a different crystal: an encoder that does not move at all is blind "
    "to atomic positions.")
CONTRAST = (
    f"The control embedding, **{lc.GEOMETRY}**, holds two numbers per crystal: log volume per atom and log atoms "
    "per cell (standardised). It knows nothing about which elements sit where, yet its t-SNE map can look as "
    "clean as a real encoder's — or cleaner. Both maps are coloured by one property; beside each, a linear probe "
    "(ridge regression, 5 folds grouped by chemical system) measures how much of that property the embedding "
    "actually holds. A map can only show what is in the embedding, and how clean it looks says nothing about that.")
PRETRAINING = (
    "A graph network with random weights is already a baseline to beat: message passing over neighbours plus mean "
    "pooling gives similar crystals similar vectors. Pretraining earns its keep only where its probe beats "
    "cgcnn-random — and the composition-only Magpie baseline — on the same folds.")
ANALOGIES = (
    "Word embeddings made *king − man + woman ≈ queen* famous. For crystals: does z(BaTiO₃) − z(BaZrO₃) + "
    "z(SrZrO₃) land on z(SrTiO₃)? Below, every such square the dataset holds — four crystals of one structure "
    "type whose sites differ by two substitutions — is scored on each encoder's standardised embedding (z-scores "
    "per dimension): the residual ‖z(a) − z(b) + z(c) − z(d)‖ / ‖z(d)‖ and the rank of the answer d among all "
    "other crystals. The arithmetic adds something only when its residual beats simply answering a or c.")
STUDY = (
    "Does self-supervised pretraining beat random weights, beyond the noise? New et al. (2024, CDSSL) counted SSL "
    "ahead of non-SSL training in 37 of 49 settings. Here the same question is asked of this project's cgcnn, with "
    "mean pooling and with a Set2Set readout: denoising, contrastive and masking pretraining against random "
    "initialisation, scored by a linear probe and a small fine-tune at several label budgets N, over pretraining "
    "seeds and folds, on properties from different datasets — and counted the same way.")
SECTIONS = (  # (title, lecturer's text, Run button (None: nothing to compute), what draws the results)
    ("1 · Same crystal, same vector?", INVARIANCE, "Run the invariance checks", "invariance"),
    ("2 · Pretty t-SNE, dead downstream", CONTRAST, "Run the comparison", "contrast"),
    ("3 · Random weights vs pretrained", PRETRAINING, "Run the probes", "pretraining"),
    ("4 · Latent arithmetic and interpolation", ANALOGIES, "Run the analogies", "analogies"),
    ("5 · Does pretraining help? The CDSSL study", STUDY, None, "study"),
)

if not lc.presenting():  # a slide needs the room: its section header is title enough
    st.title("Lecture: what does an embedding know?")
ref, ds = state.require_dataset()
names = state.current_encoders()
presenting = sections.presenter_toggle()
if not presenting:
    st.caption(f"A guided walk on '{ds.name}' ({len(ds):,} crystals) with the encoders chosen in the sidebar. "
               "Each section runs when you press its button; results are cached, so a second run is instant.")
ready = lc.prepare_panel(ref, names)
shown = [sections.section_picker([s[0] for s in SECTIONS])] if presenting else range(len(SECTIONS))

for i in shown:
    title, text, label, draw = SECTIONS[i]
    st.header(title)
    st.markdown(text)
    if label is None:  # the study's report is read, not computed here
        sections.study()
    elif lc.ran(i + 1, label, ready=ready):
        if draw == "invariance":
            sections.invariance(ref, names)
        else:
            getattr(sections, draw)(ref, ds, names)

"""Studies that answer one question end to end and write a report (``crystalrep study ...``).

``cdssl``: does self-supervised pretraining of the cgcnn encoder beat random initialisation
(New et al. 2024's question), on this machine's budget, with error bars over seeds and folds.
Pages read the result with :func:`load_report`; nothing here imports torch at import time.
"""

from __future__ import annotations

from crystalrep.study.report import load_report

__all__ = ["load_report"]

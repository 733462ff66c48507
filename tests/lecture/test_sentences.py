"""The Lecture's result sentences follow the numbers: the effect when it shows, what is seen when it does not."""

from __future__ import annotations

import pandas as pd


def test_verdicts_say_what_the_numbers_show() -> None:
    from crystalrep.lecture import sentences as lecture

    clean, busy = {"separation": 0.6, "trustworthiness": 0.99}, {"separation": 0.3, "trustworthiness": 0.97}
    shown = lecture.contrast_verdict("energy", "chgnet", 0.02, 0.85, clean, busy)
    assert "at least as clean" in shown and "R² 0.02" in shown and "0.85 from chgnet" in shown
    known = lecture.contrast_verdict("volume", "chgnet", 0.88, 0.9, clean, busy)
    assert "does not show the effect" in known
    assert "less clean" in lecture.contrast_verdict("energy", "chgnet", 0.02, 0.85, busy, clean)

    grid = pd.DataFrame({"embedding": ["cgcnn-random", "cgcnn@job1", "magpie"], "r2_mean": [0.3, 0.7, 0.5],
                         "r2_std": [0.05, 0.05, 0.05]})
    assert "cgcnn@job1 beats random weights" in lecture.pretraining_verdict(grid, ["cgcnn@job1"])
    grid.loc[1, "r2_mean"] = 0.32
    assert "no evidence that pretraining helped" in lecture.pretraining_verdict(grid, ["cgcnn@job1"])

    summary = pd.DataFrame({"encoder": ["cgcnn-random", "magpie"], "analogies": [10, 10],
                            "answer ranked 1st": [100.0, 80.0], "median residual": [0.02, 0.2],
                            "beats answering a or c": [100.0, 90.0]})
    assert "That is a network with random weights" in lecture.analogy_verdict(summary)

"""Lecture figures and styled tables, checked directly (AppTest cannot see inside plotly charts)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crystalrep.plots import lecture as plots_lecture


def _invariance(name: str, rotation: float) -> dict:
    transforms = {"rotation": {"max": rotation, "median": rotation / 2, "expected_invariant": True, "passed": rotation < 1e-4},
                  "thermal": {"max": 0.02, "median": 0.01, "expected_invariant": False, "passed": None}}
    return {"encoder": name, "n": 20, "seed": 0, "tolerance": 1e-4, "transforms": transforms}


def test_invariance_styler_marks_pass_and_fail() -> None:
    results = {"good": _invariance("good", 1e-7), "bad": _invariance("bad", 3e-2)}
    frame = plots_lecture.invariance_frame(results)
    assert list(frame["encoder"]) == ["good", "bad"]
    assert list(frame.columns) == ["encoder", "rotation", "thermal"]
    assert list(frame["rotation"]) == ["1.0e-07 / 5.0e-08", "3.0e-02 / 1.5e-02"]
    styler = plots_lecture.invariance_styler(results)
    styler._compute()
    styles = {(r, c): "".join(f"{k}: {v}" for k, v in css) for (r, c), css in styler.ctx.items()}
    assert styles[0, 1] == plots_lecture.PASS and styles[1, 1] == plots_lecture.FAIL
    assert (0, 2) not in styles or not styles[0, 2]  # thermal is expected to move: uncoloured


def test_map_pair_colours_follow_the_property_and_grey_the_missing() -> None:
    rng = np.random.default_rng(0)
    coords = [rng.normal(size=(30, 2)), rng.normal(size=(30, 2))]
    values = rng.normal(size=30)
    values[:3] = np.nan
    hover = [f"c{i}" for i in range(30)]
    fig = plots_lecture.map_pair_figure(coords, values, titles=["A", "B"], colour_label="E (eV)", hover=hover)
    labelled = [t for t in fig.data if t.name != "no value"]
    assert len(labelled) == 2 and len(fig.data) == 4
    np.testing.assert_allclose(labelled[0].marker.color, values[3:])
    assert len(fig.data[1].x) == 3 and fig.data[1].marker.color == plots_lecture.MISSING
    lo, hi = np.percentile(values[3:], plots_lecture.CLIP_PERCENTILES)
    assert fig.layout.coloraxis.cmin == lo and fig.layout.coloraxis.cmax == hi
    other = plots_lecture.map_pair_figure(coords, -values, titles=["A", "B"], colour_label="x", hover=hover)
    assert not np.allclose(other.data[0].marker.color, labelled[0].marker.color)
    assert [a.text for a in fig.layout.annotations] == ["A", "B"]


def test_r2_bars_show_each_embedding_with_its_spread() -> None:
    frame = pd.DataFrame({"embedding": ["cgcnn-random", "magpie"], "r2_mean": [0.3, -0.4], "r2_std": [0.05, 0.1]})
    fig = plots_lecture.r2_bars(frame, title="energy")
    bar = fig.data[0]
    assert list(bar.x) == ["cgcnn-random", "magpie"] and list(bar.error_y.array) == [0.05, 0.1]
    assert fig.layout.yaxis.range[0] < -0.4 and fig.layout.yaxis.range[1] >= 1


def test_r2_bars_take_each_encoders_colour() -> None:
    from crystalrep.plots.style import encoder_colour

    frame = pd.DataFrame({"embedding": ["cgcnn-random", "magpie", "cgcnn@job-1"], "r2_mean": [0.2, 0.5, 0.4],
                          "r2_std": [0.1, 0.1, 0.1]})
    fig = plots_lecture.r2_bars(frame)
    assert list(fig.data[0].marker.color) == [encoder_colour(n) for n in frame["embedding"]]


def test_for_projector_enlarges_every_text_and_leaves_the_original() -> None:
    frame = pd.DataFrame({"embedding": ["magpie"], "r2_mean": [0.5], "r2_std": [0.1]})
    fig = plots_lecture.r2_bars(frame, title="density")
    big = plots_lecture.for_projector(fig)
    size = plots_lecture.PROJECTOR_FONT
    assert big.layout.font.size == size and big.layout.title.font.size > size
    assert big.layout.xaxis.tickfont.size == size and big.layout.yaxis.title.font.size == size
    assert big.layout.margin.t >= 3 * size and big.data[0].textfont.size == size
    assert fig.layout.font.size is None  # a copy: the normal page keeps its figure
    maps = plots_lecture.map_pair_figure([np.zeros((3, 2)), np.ones((3, 2))], np.array([1.0, 2.0, np.nan]),
                                         titles=["a", "b"], colour_label="density", hover=["x", "y", "z"])
    big = plots_lecture.for_projector(maps)
    assert big.layout.coloraxis.colorbar.tickfont.size == size
    assert all(a.font.size >= size for a in big.layout.annotations)  # the subplot titles


def test_presenter_css_sets_projector_sizes_and_hides_the_sidebar() -> None:
    css = plots_lecture.PRESENTER_CSS
    assert 'section[data-testid="stSidebar"]' in css and "display: none" in css
    sizes = [int(part.split("px")[0]) for part in css.split("font-size: ")[1:]]
    assert min(sizes) >= plots_lecture.PROJECTOR_FONT


def test_hover_text_names_each_row() -> None:
    table = pd.DataFrame({"id": ["a", "b"], "formula": ["NaCl", "KCl"], "density": [2.16, float("nan")]})
    assert plots_lecture.hover_text(table, "density") == ["a · NaCl · density 2.16", "b · KCl · density nan"]


def _study_table() -> list[dict]:
    """The study's own aggregation over per-fold rows: two inits × two backbones × N = 50 and all × 2 folds."""
    from crystalrep.study.verdict import aggregate

    rows = []
    for init, base in (("random", 0.50), ("denoise", 0.40)):
        for backbone in ("mean", "set2set"):
            for n in (50, 0):
                for fold, jitter in enumerate((-0.01, 0.01)):
                    rows.append({"evaluation": "probe", "backbone": backbone, "property": "perov_5 heat_ref",
                                 "split": "random", "n": n, "init": init, "seed": 0, "fold": fold,
                                 "mae": base - (0.1 if n == 0 else 0.0) + jitter, "r2": 0.5})
    return aggregate(rows).to_dict(orient="records")


def test_study_frame_lists_mean_and_std_per_init_with_all_last() -> None:
    frame = plots_lecture.study_frame(_study_table(), "perov_5 heat_ref", ["random", "denoise", "masking"])
    assert list(frame.columns) == ["evaluation", "backbone", "split", "N", "random", "denoise", "masking"]
    assert list(frame["N"]) == ["50", "all", "50", "all"] and list(frame["backbone"]) == ["mean"] * 2 + ["set2set"] * 2
    assert frame.loc[0, "random"] == "0.500 ± 0.010" and frame.loc[1, "denoise"] == "0.300 ± 0.010"
    assert set(frame["masking"]) == {"—"}  # a task the table lacks is a dash, never a number
    assert plots_lecture.study_frame(_study_table(), "other", ["random"]).empty


def test_study_figure_has_a_line_per_init_and_backbone_with_error_bars() -> None:
    fig = plots_lecture.study_figure(_study_table(), "perov_5 heat_ref", unit="eV")
    assert len(fig.data) == 4 and {t.name for t in fig.data} == {"random · mean", "random · set2set",
                                                                  "denoise · mean", "denoise · set2set"}
    first = next(t for t in fig.data if t.name == "random · mean")
    assert list(first.x) == ["50", "all"] and np.allclose(first.y, [0.5, 0.4]) and np.allclose(first.error_y.array, 0.01)
    assert first.line.dash == "solid" and next(t for t in fig.data if t.name == "random · set2set").line.dash == "dash"
    assert fig.layout.yaxis.title.text == "test MAE (eV)" and list(fig.layout.xaxis.categoryarray) == ["50", "all"]

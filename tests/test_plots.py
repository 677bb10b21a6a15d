"""Pictures a person reads: loss curves with evaluation panels, titled sample grids of a readable size."""

import ml_collections
import numpy as np
from PIL import Image

from ganjax import plots


def _rows(n, every=10):
    return [{"step": s, "d_loss": 1.3, "g_loss": 1.3, "steps_per_sec": 50.0}
            for s in range(every, every * n + 1, every)]


def _eval(step, generator, **scores):
    return {"step": step, "kind": "eval", "generator": generator, "num_samples": 100, "split": "train",
            "features": "raw", **scores}


def test_both_losses_stay_visible_with_markers_for_few_rows_and_lines_for_many():
    for n, marked in ((4, True), (2000, False)):
        fig = plots.loss_curve_figure(_rows(n))  # equal losses: the curves lie on each other
        lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
        assert set(lines) == {"d_loss", "g_loss"}
        d, g = lines["d_loss"], lines["g_loss"]
        assert d.get_color() != g.get_color() and d.get_linestyle() != g.get_linestyle()
        assert (d.get_marker() not in (None, "None", "")) == marked
        assert len(d.get_xdata()) == n
        plots.pyplot().close(fig)


def test_eval_scores_get_one_panel_each_with_raw_and_ema_curves():
    rows = _rows(4) + [_eval(40, g, gen_mean=m, gen_std=1.2, ks=k) for g, m, k in (("raw", 2.0, 0.4),
                                                                                  ("ema", 0.3, 0.9))]
    rows += [{"step": 40, "generator": "ema", "fid": 12.0, "num_samples": 500}]  # an eval.jsonl row
    fig = plots.loss_curve_figure(rows)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "gen_mean", "gen_std", "ks", "fid"]
    assert {line.get_label() for line in fig.axes[3].get_lines()} == {"ks (raw)", "ks (ema)"}
    plots.pyplot().close(fig)
    row = _eval(1, "raw", fid=1.0, kid=2.0, modes=3, num_modes=8, high_quality=0.5, precision=0.1)
    assert plots.eval_scores([row]) == ["fid", "kid", "modes", "high_quality"]  # num_modes is the data's


def test_sample_grid_png_is_titled_and_at_least_600_pixels_wide(tmp_path):
    c = ml_collections.ConfigDict({"dataset": "fashion_mnist", "loss": "hinge", "model": {"generator": "dcgan"}})
    title = plots.sample_title(c, 1000, ema=True, trial="t0001-ab")
    assert title == "fashion_mnist | hinge loss | dcgan G | step 1000 | EMA generator | trial t0001-ab"
    images = np.random.default_rng(0).uniform(-1, 1, (64, 28, 28, 1)).astype(np.float32)
    path = str(tmp_path / "grid.png")
    grid = plots.save_samples(path, images, title=title)
    assert grid.shape == (8 * 30 + 2, 8 * 30 + 2, 1)  # the raw grid (for TensorBoard) is unchanged
    with Image.open(path) as img:
        assert img.size[0] >= 600 and img.size[1] > img.size[0]  # the title sits above the square grid

"""A short real training run: the loss falls, the mAP rises, the run folder is complete."""

import json

import pytest


@pytest.mark.slow
def test_loss_falls_and_map_rises(trained_run):
    rows = trained_run["rows"]
    first = sum(float(r["loss"]) for r in rows[:3]) / 3
    last = sum(float(r["loss"]) for r in rows[-3:]) / 3
    assert last < 0.5 * first, (first, last)
    before, after = trained_run["before"]["map"], trained_run["after"]["map"]
    assert before < 0.05
    assert after > before + 0.2, (before, after)


def test_run_folder_contents(trained_run):
    out = trained_run["out"]
    for name in ("best.pt", "last.pt", "results.csv", "results.png", "metrics.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("map", "map50", "map75"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_class"]) == {"circle", "square", "triangle", "star"}
    header = trained_run["rows"][0].keys()
    assert {"epoch", "loss", "heatmap_loss", "size_loss", "offset_loss", "lr"} <= set(header)

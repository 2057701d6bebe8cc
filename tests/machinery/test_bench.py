"""`python -m helpers bench`, and the time estimate notebook 4 prints before training."""

import json
from dataclasses import replace

from commands import invoke
from helpers.config import settle
from helpers.machinery.bench import estimate
from runs import SMOKE_CONFIG


def test_bench_dry_run_writes_its_table(data_root, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke("bench", "--dry-run", "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("3 rows, 1 time(s) each: about ")  # how long, before it starts
    assert "fast / albu." in result.stdout and "model only / albu." in result.stdout and "dry run" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["pipelines"]) == {"albumentations", "fast", "model only"} and report["dry_run"]
    assert all(figures["train_images_per_s"] > 0 for figures in report["pipelines"].values())


def test_the_estimate_before_training_includes_the_full_recipe_at_the_recipes_batch(smoke_data):
    text = estimate(settle(replace(SMOKE_CONFIG, batch_size=64)), smoke_data)
    assert (
        text.startswith("about ")
        and "for 1 epoch(s) here" in text
        and "100 epochs of 50,000 images) would take" in text
    )
    assert "would take" not in estimate(
        settle(SMOKE_CONFIG), smoke_data
    )  # batch 16: its rate says nothing of the recipe's
    whole = estimate(settle(SMOKE_CONFIG), smoke_data, lr_test_steps=30)  # notebook 4: the LR range test too
    assert whole.startswith("about ") and "for this notebook here: " in whole
    assert "for 1 epoch(s), at most " in whole and "for the LR range test's 30 steps" in whole

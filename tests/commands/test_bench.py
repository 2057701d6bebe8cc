"""`python -m helpers bench`, and the time estimate notebook 4 prints before training."""

import json
import shutil
from dataclasses import replace

import pytest

from helpers.commands import bench
from helpers.timing import estimate
from helpers.training import settle
from running import ROOT, invoke, one_line
from runs import SMOKE_CONFIG


def test_bench_dry_run_writes_its_table_over_an_earlier_benchmarks(data_root, tmp_path):
    out = tmp_path / "bench.json"
    shutil.copy(ROOT / "results" / "bench-cpu.json", out)
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


@pytest.mark.parametrize("mine", ['{"x": 1}', "notes", '{"command": "python -m helpers bench"}'])
def test_bench_refuses_to_write_over_a_file_that_is_not_a_benchmarks_before_it_starts(tmp_path, mine):
    (tmp_path / "notes.json").write_text(mine)
    result = invoke("bench", "--dry-run", "--device", "cpu", "--out", str(tmp_path / "notes.json"))
    assert "holds something other than a benchmark's figures: choose another --out" in one_line(result)
    assert result.stdout == "" and (tmp_path / "notes.json").read_text() == mine


def test_a_stopped_benchmark_removes_the_folders_it_made_for_out(tmp_path, monkeypatch):
    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "benchmark", stopped)
    result = invoke("bench", "--dry-run", "--device", "cpu", "--out", str(tmp_path / "a" / "b" / "bench.json"))
    assert one_line(result, status=130) == "interrupted: nothing was saved"
    assert list(tmp_path.iterdir()) == []

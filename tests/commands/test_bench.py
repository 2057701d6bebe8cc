"""`python -m helpers bench`, and the time estimate notebook 4 prints before training."""

import json
import shutil
from dataclasses import replace

import pytest

from helpers import timing
from helpers.commands import bench
from helpers.timing import estimate
from helpers.training import settle
from running import ROOT, invoke, one_line
from runs import SMOKE_CONFIG, TWO_EPOCHS


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


def test_the_estimate_times_fresh_passes_and_includes_the_full_recipe_at_the_recipes_batch(
    smoke_data, tmp_path, capsys
):
    fresh = replace(SMOKE_CONFIG, out=str(tmp_path / "fresh"))
    data = replace(smoke_data, train_images=smoke_data.train_images[:128], train_labels=smoke_data.train_labels[:128],
                   test_images=smoke_data.test_images[:64], test_labels=smoke_data.test_labels[:64])  # fmt: skip
    text = estimate(settle(replace(fresh, batch_size=64)), data)
    assert capsys.readouterr().out == "timing 3 x 2 training steps and the evaluation here first...\n"  # said at once
    assert text.startswith("about ") and " for 1 epoch(s) (measured: 2 steps from a fresh pass, median of 3)" in text
    assert "100 epochs of 50,000 images) would take" in text
    few = replace(data, train_images=data.train_images[:48], train_labels=data.train_labels[:48])
    whole = estimate(settle(replace(fresh, pipeline="fast")), few, lr_test_steps=30)  # notebook 4's
    assert "(measured: 3 steps" in whole  # batches of 16: all 48 images, less than one chunk of the fast pipeline
    assert " for 1 epoch(s); at most " in whole and "for the LR range test's 30 steps" in whole
    assert "would take" not in whole  # batch 16: its rate says nothing of the recipe's


def test_the_estimate_says_what_notebook_4_will_do_with_a_run_folder(two_epochs, smoke_data, monkeypatch):
    rates = {"train_images_per_s": 30.0, "eval_images_per_s": 100.0, "steps": 16}
    monkeypatch.setattr(timing, "timed_passes", lambda run, data: rates)  # the measuring is tested above
    config = replace(TWO_EPOCHS, pipeline="fast")
    _, finished, unfinished = two_epochs["fast"]
    text = estimate(settle(replace(config, out=str(finished))), smoke_data, lr_test_steps=30)
    assert text.startswith(f"about 16 s here: loads the finished run in {finished} and trains nothing; at most 16 s")
    text = estimate(settle(replace(config, out=str(unfinished))), smoke_data)
    assert text.startswith(f"about 5 s here: 5 s to continue the run in {unfinished}: its last 1 of 2 epoch(s)")
    text = estimate(settle(replace(config, seed=9, out=str(finished))), smoke_data)  # a run of other settings
    assert text.startswith("about 10 s here: 10 s for 2 epoch(s)")  # 120 / 30 + 100 / 100 s an epoch


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

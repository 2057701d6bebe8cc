"""`python -m helpers train`: a short run, the flags over the preset or the resumed run's settings."""

import itertools
import re
import subprocess
import sys
from dataclasses import asdict

import pytest

from helpers import UserError, timing, training
from helpers.commands.train import build_parser, config_from_args
from helpers.config import SMOKE, results_settings
from helpers.machinery.checkpoint import load_checkpoint
from helpers.machinery.run_folder import RESUME_ENV, check_resumable
from running import ROOT, SMOKE_RUN, invoke, one_line
from runs import LONG


def test_a_short_run_prints_best_and_last_accuracy_and_where_results_are(data_root, tmp_path):
    out = tmp_path / "run"
    result = invoke("train", *SMOKE_RUN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    first_line, last_line = lines[0], lines[-1]
    assert first_line.startswith("training on CPU") and "1 epoch(s) of 500 images" in first_line
    assert last_line.startswith("best test accuracy") and str(out) in last_line


def test_flags_given_win_over_the_smoke_preset():
    config = config_from_args(build_parser().parse_args(["--smoke", "--epochs", "3", "--batch-size", "32"]))
    assert (config.epochs, config.batch_size, config.subset) == (3, 32, SMOKE["subset"])


def test_a_resumed_run_keeps_its_settings_and_takes_the_flags_given(learning_runs):
    folder = learning_runs["fast"][1]
    resume = load_checkpoint(folder)
    config = config_from_args(build_parser().parse_args(["--resume", str(folder), "--num-workers", "3"]), resume)
    assert results_settings(asdict(config)) == results_settings(asdict(resume.config))
    assert (config.num_workers, config.out) == (3, str(folder))
    changed = config_from_args(build_parser().parse_args(["--resume", str(folder), "--epochs", "2"]), resume)
    with pytest.raises(UserError, match="made with epochs=1"):
        check_resumable(resume, changed)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", str(10**400)], "--epochs must be from 1 to 10000, got a 401-digit number"),
        (["--batch-size", str(10**400)], "--batch-size must be from 1 to 50000"),
        (["--out", LONG], "cannot write to run folder"),
        (["--resume", LONG], "cannot use"),
    ],
    ids=["huge epochs", "huge batch", "long --out", "long --resume"],
)
def test_train_refuses_huge_numbers_and_long_names_in_one_line(args, message):
    assert message in one_line(invoke("train", *SMOKE_RUN, *args))


def test_make_train_writes_to_runs_published_unless_args_name_another_out_or_a_run_to_resume():
    def flags(*args):  # what make train passes to the train command
        recipe = subprocess.run(["make", "-n", "-s", "train", *args], cwd=ROOT, capture_output=True, text=True).stdout
        return recipe.replace("\\\n", " ").split("helpers train")[1].split("||")[0].split()

    assert flags() == ["--out", "runs/published"]
    assert flags("ARGS=--smoke --out runs/smoke") == ["--smoke", "--out", "runs/smoke"]
    assert flags("ARGS=--resume runs/mine") == ["--resume", "runs/mine"]  # continued in its own folder, as it says


def test_the_whole_training_set_is_timed_first_and_each_epoch_says_its_test_accuracy(data_root, tmp_path, monkeypatch):
    rates = {"train_images_per_s": 500.0, "eval_images_per_s": 2000.0, "steps": 16}
    monkeypatch.setattr(timing, "timed_passes", lambda run, data: rates)  # the measuring: tests/commands/test_bench.py
    train_epoch, calls = training.train_epoch, itertools.count()

    def one_epoch_then_stop(trainer, batches, *args, **kwargs):  # two steps stand in for epoch 1; Ctrl-C in epoch 2
        if next(calls) == 0:
            return train_epoch(trainer, itertools.islice(batches, 2), *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_epoch", one_epoch_then_stop)
    monkeypatch.setenv(RESUME_ENV, 'make train ARGS="--resume {path}"')  # as make train sets it
    out = tmp_path / "run"
    flags = ["--epochs", "3", "--test-subset", "100", "--device", "cpu", "--pipeline", "fast", "--no-progress"]
    result = invoke("train", *flags, "--out", str(out))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("training on CPU") and lines[0].endswith(
        "3 epoch(s) of 50,000 images, fast pipeline, fp32"
    )
    rate = "about 5.0 min here for 3 epoch(s) (measured: 16 steps from a fresh pass, median of 3)"
    assert lines[1] == rate  # 50,000 / 500 + 100 / 2,000 s an epoch
    assert re.fullmatch(r"epoch 1/3: test accuracy \d+\.\d\d%, train loss \d\.\d{3} \(\d+ s\)", lines[2]), lines[2]
    assert one_line(result, status=130) == (
        f'interrupted: {out}/checkpoint.pt holds epoch 1; continue with make train ARGS="--resume {out}"'
    )


def test_make_train_stopped_says_how_to_continue_in_makes_words_and_adds_no_error(tmp_path):
    fake = tmp_path / "bin"  # a .venv whose python stops as a training run does: one line, status 130
    (fake / "bin").mkdir(parents=True)
    (fake / ".installed").touch()
    stub = "import os, sys; print(os.environ['HELPERS_RESUME'], file=sys.stderr); sys.exit(130)"
    (fake / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} -c "{stub}"\n')
    (fake / "bin" / "python").chmod(0o755)
    result = subprocess.run(["make", "-s", "-o", f"{fake}/.installed", "train", f"VENV={fake}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and result.stderr == 'make train ARGS="--resume {path}"\n', result.stderr

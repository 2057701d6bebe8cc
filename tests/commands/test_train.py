"""`python -m helpers train`: a short run, the flags over the preset or the resumed run's settings."""

import subprocess
from dataclasses import asdict

import pytest

from helpers import UserError
from helpers.commands.train import build_parser, config_from_args
from helpers.config import SMOKE, results_settings
from helpers.machinery.checkpoint import load_checkpoint
from helpers.machinery.run_folder import check_resumable
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


def test_make_train_writes_to_runs_published_unless_args_name_another_out():
    def dry(*args):
        return subprocess.run(["make", "-n", "-s", "train", *args], cwd=ROOT, capture_output=True, text=True).stdout

    assert "helpers train --out runs/published" in dry()
    assert dry("ARGS=--smoke --out runs/smoke").split("helpers train")[1].split() == ["--smoke", "--out", "runs/smoke"]

"""`python -m helpers.train` and `python -m helpers.bench` as a user runs them."""
import json
import os
import subprocess
import sys

import pytest


def run(module, *args, data_root=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    if data_root is not None:
        env["CIFAR10_ROOT"] = str(data_root)
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_help_explains_every_setting():
    result = run("helpers.train", "--help")
    assert result.returncode == 0
    for flag in ("--epochs", "--batch-size", "--max-lr", "--seed", "--device", "--subset", "--data-root", "--out", "--resume", "--pipeline"):
        assert flag in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be positive"),
    (["--batch-size", "-64"], "--batch-size must be positive"),
    (["--device", "quantum"], "unknown device"),
    (["--epochs", "ten"], "invalid int value"),
    (["--out", "/proc/cannot-write-here"], "cannot write to run folder"),
    (["--resume", "/nonexistent/run"], "no checkpoint at"),
])
def test_bad_values_give_one_line_and_exit_status_2(data_root, args, message):
    result = run("helpers.train", *args, "--subset", "100", data_root=data_root)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert result.returncode == 2
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr


def test_corrupted_data_root_gives_one_line_and_exit_status_2(data_root, tmp_path):
    source = data_root / "cifar-10-batches-py"
    (tmp_path / "cifar-10-batches-py").mkdir()
    for path in source.iterdir():
        (tmp_path / "cifar-10-batches-py" / path.name).symlink_to(path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    result = run("helpers.train", "--subset", "100", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: CIFAR-10 files in")
    assert "Traceback" not in result.stderr


def test_a_short_run_prints_best_and_last_accuracy_and_where_results_are(data_root, tmp_path):
    out = tmp_path / "run"
    result = run("helpers.train", "--epochs", "1", "--subset", "320", "--test-subset", "100", "--device", "cpu",
                 "--out", str(out), data_root=data_root)
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith("best test accuracy") and str(out) in last_line
    resumed = run("helpers.train", "--resume", str(out), "--epochs", "2", data_root=data_root)
    assert resumed.returncode == 2 and "epochs=1" in resumed.stderr  # a different schedule is refused


def test_bench_dry_run_writes_its_table(data_root, tmp_path):
    out = tmp_path / "bench.json"
    result = run("helpers.bench", "--steps", "2", "--warmup", "1", "--repeats", "2", "--device", "cpu", "--out", str(out),
                 data_root=data_root)
    assert result.returncode == 0, result.stderr
    assert "fast / albu." in result.stdout and "model only / albu." in result.stdout
    report = json.loads(out.read_text())
    assert set(report["pipelines"]) == {"albumentations", "fast", "model only"}
    assert all(figures["train_images_per_s"] > 0 for figures in report["pipelines"].values())
    assert all(len(runs) == 2 for runs in report["runs"].values())


def test_bench_refuses_zero_repeats_in_one_line(data_root):
    result = run("helpers.bench", "--repeats", "0", "--device", "cpu", data_root=data_root)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --steps, --warmup and --repeats must be at least 1"

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import UserError
from helpers.config import PIPELINES, TrainConfig, with_preset
from helpers.data import load_cifar10, resolve_data_root
from helpers.training import fit, settle
from runs import SMOKE_CONFIG, TWO_EPOCHS, train


@pytest.fixture(scope="session")
def data_root():
    """Where the tests read CIFAR-10: $CIFAR10_ROOT, else the project's data/ (downloaded there once)."""
    root = resolve_data_root()
    try:
        load_cifar10(root)
    except UserError as error:  # no data and no download: say so once, not once per test
        pytest.exit(f"error: {error}", returncode=2)
    return root


@pytest.fixture(scope="session")
def cifar(data_root):
    return load_cifar10(data_root, download=False)


@pytest.fixture(scope="session")
def small_cifar(data_root):
    """1,000 training and 1,000 test images, class-balanced: enough for one epoch to beat chance."""
    return load_cifar10(data_root, subset=1000, test_subset=1000, download=False)


@pytest.fixture(scope="session")
def smoke_data(data_root):
    """SMOKE_CONFIG's images (tests/runs.py), for the mechanics of a run."""
    return load_cifar10(data_root, subset=SMOKE_CONFIG.subset, test_subset=SMOKE_CONFIG.test_subset, download=False)


@pytest.fixture(scope="session")
def learning_runs(small_cifar, tmp_path_factory):
    """The SMOKE preset on 1,000 images (one epoch), trained once per pipeline: {pipeline: (history, run folder)}."""
    runs = {}
    for pipeline in PIPELINES:
        folder = tmp_path_factory.mktemp(f"smoke-{pipeline}")
        config = with_preset(TrainConfig(device="cpu", progress=False, pipeline=pipeline, out=str(folder)), "smoke")
        config = replace(config, subset=len(small_cifar.train_labels), test_subset=len(small_cifar.test_labels))
        runs[pipeline] = fit(settle(config), data=small_cifar), folder
    return runs


@pytest.fixture(scope="session")
def finished_run(learning_runs):
    """A run folder `python -m helpers train` finished (one epoch), to copy and damage."""
    return learning_runs["fast"][1]


@pytest.fixture(scope="session")
def two_epochs(smoke_data, tmp_path_factory):
    """Per pipeline: (history, folder of the finished 2-epoch run, copy of that folder after epoch 1)."""
    runs = {}
    for pipeline in PIPELINES:
        whole, after_1 = tmp_path_factory.mktemp(f"whole-{pipeline}"), tmp_path_factory.mktemp(f"after1-{pipeline}")

        def keep_epoch_1(record, whole=whole, after_1=after_1):
            if record["epoch"] == 1:
                shutil.copytree(whole, after_1, dirs_exist_ok=True)

        history = train(replace(TWO_EPOCHS, pipeline=pipeline, out=str(whole)), smoke_data, on_epoch_end=keep_epoch_1)
        runs[pipeline] = history, whole, after_1
    return runs


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(options): an empty folder on a tmpfs mounted with `options` ("ro", "size=64k": a read-only or a
    full disk, as root may write anywhere else); skipped where mount is refused."""
    mounted = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"tmpfs-{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only_folder(mount_tmpfs):
    """An empty folder on a read-only file system."""
    return mount_tmpfs("ro,size=64k")

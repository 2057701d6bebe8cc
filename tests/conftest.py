from dataclasses import replace

import pytest

from helpers import UserError
from helpers.data import load_cifar10, resolve_data_root


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
    """2,000 training and 1,000 test images, class-balanced: enough for one epoch to beat chance."""
    return load_cifar10(data_root, subset=2000, test_subset=1000, download=False)


@pytest.fixture(scope="session")
def smoke_data(data_root):
    """The SMOKE preset's images (500 training, 200 test): about a second an epoch, for the mechanics of a run."""
    from helpers.config import SMOKE

    return load_cifar10(data_root, subset=SMOKE["subset"], test_subset=SMOKE["test_subset"], download=False)


@pytest.fixture(scope="session")
def learning_runs(small_cifar, tmp_path_factory):
    """The SMOKE preset on 2,000 images (one epoch), trained once per pipeline: {pipeline: (history, run folder)}."""
    from helpers.config import PIPELINES, TrainConfig, smoke
    from helpers.device import settle
    from helpers.engine import fit

    runs = {}
    for pipeline in PIPELINES:
        folder = tmp_path_factory.mktemp(f"smoke-{pipeline}")
        config = TrainConfig(device="cpu", progress=False, pipeline=pipeline, out=str(folder))
        config = replace(smoke(config), subset=len(small_cifar.train_labels), test_subset=len(small_cifar.test_labels))
        runs[pipeline] = fit(*settle(config), data=small_cifar), folder
    return runs

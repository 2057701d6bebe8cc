import os
from pathlib import Path

import pytest

from helpers.data import DATA_ROOT_ENV, load_cifar10, resolve_data_root

# Tests run on the real CIFAR-10: $CIFAR10_ROOT, else the shared copy beside the checkout.
DATA_ROOT = Path(os.environ.get(DATA_ROOT_ENV) or Path(__file__).parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (resolve_data_root(DATA_ROOT) / "cifar-10-batches-py").is_dir():
        pytest.fail(f"CIFAR-10 not found under {DATA_ROOT}: set {DATA_ROOT_ENV} to the folder holding cifar-10-batches-py")
    return DATA_ROOT


@pytest.fixture(scope="session")
def cifar(data_root):
    return load_cifar10(data_root, download=False)


@pytest.fixture(scope="session")
def small_cifar(data_root):
    """2,000 training and 1,000 test images, class-balanced."""
    return load_cifar10(data_root, subset=2000, test_subset=1000, download=False)

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
    """2,000 training and 1,000 test images, class-balanced."""
    return load_cifar10(data_root, subset=2000, test_subset=1000, download=False)


@pytest.fixture(scope="session")
def tiny_cifar(data_root):
    """320 training and 200 test images: seconds per epoch, for the mechanics of a run."""
    return load_cifar10(data_root, subset=320, test_subset=200, download=False)

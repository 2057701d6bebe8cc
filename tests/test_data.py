import errno
import math
import os
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.cifar

from helpers import UserError
from helpers.data import STATS_CHUNK, channel_stats, class_balanced_indices, load_cifar10, resolve_data_root


def test_training_mean_and_std_match_the_published_normalisation(cifar):
    assert np.round(cifar.mean, 4).tolist() == [0.4914, 0.4822, 0.4465]
    assert np.round(cifar.std, 4).tolist() == [0.2470, 0.2435, 0.2616]


def test_channel_stats_are_exact_on_a_sample(cifar):
    images = cifar.train_images[: STATS_CHUNK + 952]  # counted in two chunks, the second a part
    sample = images.reshape(-1, 3)
    n = len(sample)
    sums = [int(total) for total in sample.sum(0, dtype=np.int64)]
    squares = [int(total) for total in (sample.astype(np.int64) ** 2).sum(0)]
    exact_mean = [Fraction(total, n * 255) for total in sums]  # in integers, then divided once
    exact_var = [Fraction(sq * n - total**2, n * n * 255**2) for sq, total in zip(squares, sums, strict=True)]
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, [float(m) for m in exact_mean], rtol=1e-14)
    np.testing.assert_allclose(std, [math.sqrt(v) for v in exact_var], rtol=1e-13)


def test_whole_dataset_in_memory_as_uint8(cifar):
    assert cifar.train_images.shape == (50000, 32, 32, 3) and cifar.train_images.dtype == np.uint8
    assert cifar.test_images.shape == (10000, 32, 32, 3)
    assert np.bincount(cifar.train_labels).tolist() == [5000] * 10
    assert cifar.classes[:3] == ("airplane", "automobile", "bird") and len(cifar.classes) == 10


def test_subset_is_class_balanced_and_deterministic(data_root):
    first = load_cifar10(data_root, subset=1005, test_subset=200, download=False)
    again = load_cifar10(data_root, subset=1005, test_subset=200, download=False)
    assert np.bincount(first.train_labels).tolist() == [101] * 5 + [100] * 5
    assert np.bincount(first.test_labels).tolist() == [20] * 10
    np.testing.assert_array_equal(first.train_images, again.train_images)
    assert first.mean == again.mean  # always the full training set's statistics


def test_a_data_root_is_read_once_in_a_process_whether_a_call_may_download_or_not(data_root):
    assert load_cifar10(data_root, download=False).train_images is load_cifar10(data_root).train_images


def test_subset_size_out_of_range_is_a_user_error():
    with pytest.raises(UserError, match="between 10 and 50"):
        class_balanced_indices(np.repeat(np.arange(10), 5), 51)


def test_data_root_comes_from_argument_then_environment_then_the_project_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path))
    assert resolve_data_root("elsewhere").name == "elsewhere"
    assert resolve_data_root() == tmp_path
    monkeypatch.delenv("CIFAR10_ROOT")
    monkeypatch.chdir(tmp_path)  # as a notebook kernel in notebooks/: still the checkout's data/
    assert resolve_data_root() == Path(__file__).resolve().parents[1] / "data"


def test_missing_data_that_cannot_be_downloaded_says_what_to_do_and_leaves_no_folder(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # what torchvision's download calls
    with pytest.raises(UserError) as error:
        load_cifar10(tmp_path / "missing" / "data")
    message = str(error.value)
    assert "are missing; tried the mirror (" in message and "and the official download (URLError)" in message
    assert "--data-root" in message and "CIFAR10_ROOT" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []  # torchvision made the folders to download into: removed again


def test_a_data_root_that_is_a_file_or_a_loop_of_links_is_refused_before_any_download(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"notes.txt is not a folder: pass the folder that holds .* --data-root"):
        load_cifar10(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(UserError, match="cannot use the data root .*loop"):
        load_cifar10(tmp_path / "loop")


def test_corrupted_file_fails_the_md5_check(data_root, tmp_path):
    source = resolve_data_root(data_root) / "cifar-10-batches-py"
    broken = tmp_path / "cifar-10-batches-py"
    broken.mkdir()
    for path in source.iterdir():
        os.symlink(path, broken / path.name)
    (broken / "test_batch").unlink()
    (broken / "test_batch").write_bytes((source / "test_batch").read_bytes()[:1000])
    with pytest.raises(UserError, match="MD5"):
        load_cifar10(tmp_path, download=False)


def test_an_unreadable_cifar_file_says_so_not_md5(data_root, tmp_path, monkeypatch):
    for path in (data_root / "cifar-10-batches-py").iterdir():
        (tmp_path / "cifar-10-batches-py").mkdir(exist_ok=True)
        (tmp_path / "cifar-10-batches-py" / path.name).symlink_to(path)

    def unreadable(path, md5=None):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", unreadable)
    with pytest.raises(UserError, match="cannot be read \\(Permission denied: .*: make them readable") as error:
        load_cifar10(tmp_path, download=False)
    assert "MD5" not in str(error.value)

"""CIFAR-10 from a mirror (a stand-in on 127.0.0.1): used only once it equals the official arrays, kept for the
next load, and refused in one line, with nothing left behind, when it does not or does not answer."""

import functools
import os
import resource
import signal
import urllib.error
import urllib.request

import numpy as np
import pytest

from helpers import UserError, data
from helpers.data import CIFAR10Data, channel_stats, load_cifar10
from helpers.machinery import download
from helpers.machinery.download import CACHE, SPLITS, MirrorError, from_cache, official_order, save_cache
from mirror import Server, build, write_split
from running import ROOT, SMOKE_RUN, invoke, one_line

ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def test_the_shipped_digests_are_the_official_arrays_and_put_a_shuffled_split_back(cifar):
    for split in SPLITS:
        images, labels = getattr(cifar, f"{split}_images"), getattr(cifar, f"{split}_labels")
        in_order = official_order(split, images, labels)  # in order: the SHA-256 alone
        assert in_order[0] is images and in_order[1] is labels
    order = np.random.default_rng(0).permutation(len(cifar.test_labels))
    images, labels = official_order("test", cifar.test_images[order], cifar.test_labels[order])  # image by image
    np.testing.assert_array_equal(images, cifar.test_images)
    np.testing.assert_array_equal(labels, cifar.test_labels)
    changed = cifar.test_images[order].copy()
    changed[10, 0, 0, 0] ^= 1
    with pytest.raises(MirrorError, match="1 of its test images or labels differ"):
        official_order("test", changed, cifar.test_labels[order])


@pytest.fixture(scope="module")
def official(cifar):
    """A small CIFAR-10 for the download's tests, cut from the official arrays (every code path of a mirror
    download, in a second rather than the 30 s that encoding and decoding 60,000 PNGs take)."""
    train, test = slice(0, 600), slice(0, 200)
    train_images, test_images = cifar.train_images[train], cifar.test_images[test]
    return CIFAR10Data(train_images, cifar.train_labels[train], test_images, cifar.test_labels[test],
                       cifar.classes, *channel_stats(train_images))  # fmt: skip


@pytest.fixture
def official_digests(official, tmp_path_factory, monkeypatch):
    """The download checks the mirror against the small CIFAR-10's digests, made as the shipped ones are."""
    path = tmp_path_factory.mktemp("digests") / "digests.npz"
    splits = {split: (getattr(official, f"{split}_images"), getattr(official, f"{split}_labels")) for split in SPLITS}
    np.savez(path, **download.digests(splits))
    monkeypatch.setattr(download, "DIGESTS", path)


@pytest.fixture(scope="module")
def stand_in(official, tmp_path_factory):
    """The mirror's two files, made from the (small) official arrays; the test split in another order."""
    order = np.random.default_rng(0).permutation(len(official.test_labels))
    splits = {
        "train": (official.train_images, official.train_labels),
        "test": (official.test_images[order], official.test_labels[order]),
    }
    return build(tmp_path_factory.mktemp("mirror"), splits)


@pytest.fixture
def offline(monkeypatch):
    """No internet, as here: only 127.0.0.1 answers (the official server's download fails at once)."""
    urlopen = urllib.request.urlopen

    def local_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        if not url.startswith("http://127.0.0.1:"):
            raise urllib.error.URLError("no network")
        return urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setattr(data, "LOADED", {})  # every load below reads its folder anew (and the suite's stays held)


def test_a_mirror_download_equals_the_official_arrays_survives_a_dropped_connection_and_is_kept(
    official, official_digests, stand_in, tmp_path, monkeypatch, offline
):
    root = tmp_path / "data"
    with Server(stand_in, drop=300_000) as mirror:  # each file's first answer stops after 300 kB
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        loaded = load_cifar10(root)
    for name in ARRAYS:  # the test split was shuffled: put back in the official order
        np.testing.assert_array_equal(getattr(loaded, name), getattr(official, name))
    assert (loaded.mean, loaded.std, loaded.classes) == (official.mean, official.std, official.classes)
    resumed = [path for path, range_ in mirror.requests if range_ == "bytes=300000-"]
    assert sorted(resumed) == sorted(f"/{name}" for name in SPLITS.values())
    assert [path.name for path in root.iterdir()] == [CACHE]  # what was kept; no temporary file
    data.LOADED.clear()  # as a new process would
    monkeypatch.setenv("CIFAR10_MIRROR", NOWHERE)
    again = load_cifar10(root, download=False)  # from what was kept, checked again: nothing downloaded
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(official, name))


def test_a_mirror_one_pixel_off_is_refused_in_one_line_and_leaves_nothing(
    official, official_digests, stand_in, tmp_path, monkeypatch, offline
):
    changed = tmp_path / "mirror"
    (changed / SPLITS["train"]).parent.mkdir(parents=True)
    os.symlink(stand_in / SPLITS["train"], changed / SPLITS["train"])
    images = official.test_images.copy()
    images[123, 5, 6, 0] ^= 1  # one channel of one pixel of one image
    write_split(changed / SPLITS["test"], images, official.test_labels)
    root = tmp_path / "data" / "cifar"
    with Server(changed) as mirror:
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(UserError) as error:
            load_cifar10(root)
    message = str(error.value)
    assert "tried the mirror (1 of its test images or labels differ from the official ones)" in message
    assert "and the official download (URLError)" in message and "\n" not in message
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mirror"]  # the data folders made are gone


def test_a_mirror_that_does_not_answer_ends_the_command_in_one_line(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("CIFAR10_MIRROR", NOWHERE)
    root = tmp_path / "data"
    result = invoke("train", *SMOKE_RUN, "--data-root", str(root), "--out", str(tmp_path / "run"))
    line = one_line(result)
    assert f"tried the mirror ({NOWHERE}/{SPLITS['test']} did not answer: URLError)" in line
    assert "and the official download (URLError)" in line and "--data-root" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mirror", ["not an address", "huggingface.co/datasets/x", "file:///tmp/mirror", "http://[::1"])
def test_a_mirror_that_is_not_an_http_address_is_refused_in_one_line(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("CIFAR10_MIRROR", mirror)
    result = invoke("train", *SMOKE_RUN, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run"))
    assert one_line(result).startswith(f"error: $CIFAR10_MIRROR must be an http(s) address, got {mirror!r}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda images, labels: (images.reshape(len(images), -1), labels),  # the same bytes, flat
        lambda images, labels: (images, labels.astype(np.float32)),
        lambda images, labels: (images.astype(np.float64), labels),
        lambda images, labels: (images[..., 0], labels),
    ],
    ids=["flat images", "float labels", "float images", "one channel"],
)
def test_kept_arrays_of_another_shape_or_type_are_no_cache(official, official_digests, tmp_path, change):
    splits = {split: (getattr(official, f"{split}_images"), getattr(official, f"{split}_labels")) for split in SPLITS}
    save_cache(tmp_path, splits)
    assert from_cache(tmp_path) is not None  # as kept: used
    save_cache(tmp_path, {split: change(*pair) for split, pair in splits.items()})
    assert from_cache(tmp_path) is None  # downloaded again instead


def test_the_maintainers_digests_are_written_safely_and_only_when_they_change(data_root, tmp_path, monkeypatch):
    path = tmp_path / "digests.npz"
    monkeypatch.setattr(download, "DIGESTS", path)
    compute, computed = download.digests, []

    def digests_once(splits):  # the same official files each time (read once): their 60,000 images hashed once
        if not computed:
            computed.append(compute(splits))
        return computed[0]

    monkeypatch.setattr(download, "official_splits", functools.cache(download.official_splits))
    monkeypatch.setattr(download, "digests", digests_once)
    assert download.write_digests(data_root) is True
    written = path.read_bytes()
    shipped = {key: value for key, value in np.load(ROOT / "helpers" / "machinery" / "cifar10_digests.npz").items()}
    assert {key: value.tolist() for key, value in np.load(path).items()} == {k: v.tolist() for k, v in shipped.items()}
    path.touch()
    stamp = path.stat().st_mtime_ns
    assert download.write_digests(data_root) is False  # the same digests: the file is left as it is
    assert path.read_bytes() == written and path.stat().st_mtime_ns == stamp
    path.write_bytes(written[:100])  # cut: written again, whole
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as the commands do: a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))
    try:
        with pytest.raises(UserError, match="File too large"):
            download.write_digests(data_root)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == written[:100] and [p.name for p in tmp_path.iterdir()] == ["digests.npz"]
    with pytest.raises(UserError, match="no official CIFAR-10 files in"):
        download.write_digests(tmp_path / "nowhere")


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b[:-100], lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:]],
                         ids=["half", "last 100 bytes cut", "a flipped byte"])  # fmt: skip
def test_a_damaged_kept_npz_is_no_cache(official, official_digests, tmp_path, damage):
    splits = {split: (getattr(official, f"{split}_images"), getattr(official, f"{split}_labels")) for split in SPLITS}
    save_cache(tmp_path, splits)
    (tmp_path / CACHE).write_bytes(damage((tmp_path / CACHE).read_bytes()))
    assert from_cache(tmp_path) is None  # downloaded again, not stuck


def test_a_mirror_address_with_a_pasted_newline_is_read_without_it(monkeypatch):
    monkeypatch.setenv("CIFAR10_MIRROR", " http://127.0.0.1:8000/cifar/\n")
    assert download.mirror_base() == "http://127.0.0.1:8000/cifar"


def test_a_mirror_that_answers_404_says_so(tmp_path, monkeypatch, offline):
    (tmp_path / "empty").mkdir()
    with Server(tmp_path / "empty") as mirror:  # no files there: every request is a 404
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(UserError, match=r"did not answer: HTTPError 404\)"):
            load_cifar10(tmp_path / "data")


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_a_single_array_in_place_of_the_kept_npz_is_no_cache(official, official_digests, tmp_path, dtype):
    with open(tmp_path / CACHE, "wb") as file:  # np.save by the kept file's name: one array, no zip
        np.save(file, official.train_images.astype(dtype))
    assert from_cache(tmp_path) is None  # downloaded again instead


@pytest.mark.parametrize("below", ["", "cifar/data"], ids=["the root itself", "folders to make in it"])
def test_a_data_root_that_cannot_be_written_is_said_in_one_line_before_any_download(
    read_only_folder, monkeypatch, offline, below
):
    root = read_only_folder / below
    monkeypatch.setenv("CIFAR10_MIRROR", NOWHERE)
    result = invoke("train", *SMOKE_RUN, "--data-root", str(root), "--out", str(read_only_folder.parent / "run"))
    stopped_at = read_only_folder / below.partition("/")[0]  # the first folder that could not be made
    assert one_line(result) == (
        f"error: cannot write to the data root {root} (Read-only file system): the disk is read-only: "
        "pass another folder with --data-root or $CIFAR10_ROOT"
    ), stopped_at
    assert list(read_only_folder.iterdir()) == [] and not (read_only_folder.parent / "run").exists()


def test_a_full_disk_during_the_download_is_said_as_such_and_leaves_nothing(
    official_digests, stand_in, mount_tmpfs, monkeypatch, offline
):
    root = mount_tmpfs("size=64k")  # the stand-in's test file is larger
    with Server(stand_in) as mirror:
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(UserError) as error:
            load_cifar10(root)
    assert str(error.value) == (
        f"cannot write the download into {root} (No space left on device): free some space, or pass another "
        "folder with --data-root or $CIFAR10_ROOT"
    )
    assert list(root.iterdir()) == []


def test_a_mirror_slower_than_the_official_server_is_given_up(
    official_digests, stand_in, tmp_path, monkeypatch, offline
):
    monkeypatch.setattr(download, "GRACE", 0.5)  # in place of 30 s
    with Server(stand_in, pace=0.1) as mirror:  # a byte every 0.1 s
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(UserError) as error:
            load_cifar10(tmp_path / "data")
    assert f"tried the mirror ({mirror.base}/{SPLITS['test']} sent 0.0 kB in 1 s, slower than the 50 kB/s" in str(
        error.value
    )
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_announcing_more_than_cifar_10_can_take_is_refused_before_writing(
    official_digests, stand_in, tmp_path, monkeypatch, offline
):
    with Server(stand_in, announce=str(10**12)) as mirror:
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(
            UserError, match=r"announces 1,000,000.0 MB, more than the 61.4 MB CIFAR-10's file can take"
        ):
            load_cifar10(tmp_path / "data")
    monkeypatch.setitem(download.LARGEST, "test", 100_000)  # no size announced, and more sent than a split can take
    with Server(stand_in, announce="many bytes") as mirror:
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        with pytest.raises(UserError, match=r"sent more than the 0.1 MB CIFAR-10's file can take"):
            load_cifar10(tmp_path / "data")
    assert list(tmp_path.iterdir()) == []


def test_a_content_length_that_is_not_a_number_is_a_size_unknown(official, official_digests, stand_in, tmp_path,
                                                                  monkeypatch, offline, capsys):  # fmt: skip
    with Server(stand_in, announce="many bytes") as mirror:
        monkeypatch.setenv("CIFAR10_MIRROR", mirror.base)
        loaded = load_cifar10(tmp_path / "data")
    np.testing.assert_array_equal(loaded.test_images, official.test_images)
    assert "(size unknown)" in capsys.readouterr().out

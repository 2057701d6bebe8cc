"""CIFAR-10 held in memory as uint8 arrays: the official files under a local root, or downloaded once (from a
mirror checked against the official files, else from the official server by torchvision)."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import PROJECT_ROOT, UserError
from helpers.machinery.download import OTHER_ROOT, MirrorError, from_cache, from_mirror
from helpers.machinery.files import check_writable_folder, missing_folders, remove_empty

DATA_ROOT_ENV = "CIFAR10_ROOT"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The project's own data/, whatever the working directory (the notebooks run in notebooks/);
# ./data for a copy of the package installed outside its checkout.
DEFAULT_DATA_ROOT = PROJECT_ROOT / "data" if (PROJECT_ROOT / "pyproject.toml").exists() else Path("data")
# Images counted at a time by channel_stats: all 50,000 at once would widen 400 MB per channel, 1.4 s more per process.
STATS_CHUNK = 2048


@dataclass(frozen=True)
class CIFAR10Data:
    """Train and test images as (N, 32, 32, 3) uint8 HWC arrays, labels as int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    mean: tuple[float, float, float]  # per channel, of the full training set, in [0, 1]
    std: tuple[float, float, float]


def resolve_data_root(root=None) -> Path:
    """The root folder that holds cifar-10-batches-py: the argument, else $CIFAR10_ROOT, else the project's data/."""
    return Path(root or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and population std in [0, 1] of uint8 HWC images, via value histograms."""
    counts = np.zeros((images.shape[-1], 256), dtype=np.int64)
    for start in range(0, len(images), STATS_CHUNK):  # bincount widens its input to 64 bits: a chunk at a time
        chunk = images[start : start + STATS_CHUNK]
        for channel, channel_counts in enumerate(counts):
            channel_counts += np.bincount(chunk[..., channel].ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for channel_counts in counts.astype(np.float64):
        mean = channel_counts @ levels / channel_counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(channel_counts @ (levels - mean) ** 2 / channel_counts.sum())))
    return tuple(means), tuple(stds)


def class_balanced_indices(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A deterministic sample of `size` indices with the classes as equal as possible, in dataset order."""
    classes = np.unique(labels)
    if not len(classes) <= size <= len(labels):
        raise UserError(f"subset must be between {len(classes)} and {len(labels)} images, got {size}")
    rng = np.random.default_rng(seed)
    per_class = [size // len(classes) + (i < size % len(classes)) for i in range(len(classes))]
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, per_class, strict=True)]
    return np.sort(np.concatenate(chosen))


def _official_split(root: Path, train: bool):
    """(images, labels) from the official files under `root` (torchvision checks their MD5 sums), or None
    where they are missing or fail the check."""
    # torchvision is imported where the files are read, here and below: its import takes seconds (it imports
    # torch._dynamo), which the commands that read no data (seeds' own process, summary) need not wait for.
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    folder = root / TorchvisionCIFAR10.base_folder
    try:
        split = TorchvisionCIFAR10(str(root), train=train, download=False)
    except OSError as error:  # there, but the system refuses to read it: a download would not help
        raise UserError(
            f"CIFAR-10 files in {folder} cannot be read ({error.strerror}: {error.filename}): "
            f"make them readable, or pass another folder with --data-root or ${DATA_ROOT_ENV}"
        ) from None
    except RuntimeError:  # torchvision: "Dataset not found or corrupted."
        return None
    return split.data, np.asarray(split.targets, dtype=np.int64)


def _official_download(root: Path) -> dict:
    """torchvision's download of the official files into `root` (MD5-checked); after a failure, remove the
    folders and archive it made."""
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    made = missing_folders(root)
    archive = root / TorchvisionCIFAR10.filename
    had_archive = archive.exists()
    try:
        TorchvisionCIFAR10(str(root), train=True, download=True)
    except BaseException:
        if not had_archive:
            archive.unlink(missing_ok=True)
        remove_empty(made)
        raise
    return {split: _official_split(root, train=split == "train") for split in ("train", "test")}


def _find_or_download(root: Path, download: bool) -> dict:
    """{"train": (images, labels), "test": ...}: the official files under `root`; else the arrays a mirror
    download kept there; else (with `download`) the mirror, checked against the official files' digests;
    else torchvision's download of the official files."""
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    splits = {split: _official_split(root, train=split == "train") for split in ("train", "test")}
    if all(pair is not None for pair in splits.values()):
        return splits
    folder = root / TorchvisionCIFAR10.base_folder
    problem = "fail torchvision's MD5 check" if folder.exists() else "are missing"
    kept = from_cache(root)
    if kept is not None:
        return kept
    tried = ""
    if download:
        made = missing_folders(root)
        try:  # a folder that cannot be written (a read-only mount) is said so before any download
            check_writable_folder(root, "the data root", instead=OTHER_ROOT)
        finally:
            remove_empty(made)  # each download makes what it needs, and takes it away again if it fails
        try:
            return from_mirror(root)
        except MirrorError as error:
            print(f"not using the mirror: {error}; trying the official download (163 MB, slow)")
            tried = f"; tried the mirror ({error})"
        try:
            return _official_download(root)
        except Exception as error:  # network errors come in many types; all mean the same here
            tried += f" and the official download ({type(error).__name__})"
    raise UserError(
        f"CIFAR-10 files in {folder} {problem}{tried}: put the official python-version files "
        f"(cifar-10-batches-py) under a folder and pass it with --data-root or ${DATA_ROOT_ENV}, "
        f"or run once with internet access to download them"
    )


LOADED: dict[Path, CIFAR10Data] = {}  # per data root: read once in a process, whether a call may download or not
HELD = 4  # data roots held at most (about 180 MB each)


def _load(root: Path, download: bool) -> CIFAR10Data:
    if root not in LOADED:
        splits = _find_or_download(root, download)
        (train_images, train_labels), (test_images, test_labels) = splits["train"], splits["test"]
        mean, std = channel_stats(train_images)
        for array in (train_images, test_images):
            array.flags.writeable = False  # shared by every caller
        if len(LOADED) == HELD:
            del LOADED[next(iter(LOADED))]  # the first read
        LOADED[root] = CIFAR10Data(train_images, train_labels, test_images, test_labels, CLASSES, mean, std)
    return LOADED[root]


def load_cifar10(root=None, subset=None, test_subset=None, download=True) -> CIFAR10Data:
    """Load CIFAR-10 (the official files MD5-checked, or a mirror's checked against their digests), optionally a
    class-balanced subset of train and/or test.

    mean and std are always those of the full training set, the published normalisation.
    """
    root = resolve_data_root(root).expanduser()
    try:
        root = root.resolve()  # one cache entry per folder, whatever it is called
    except (OSError, RuntimeError) as error:  # a loop of links: RuntimeError before Python 3.13
        raise UserError(
            f"cannot use the data root {root} ({error}): pass another with --data-root or ${DATA_ROOT_ENV}"
        ) from None
    if root.exists() and not root.is_dir():
        raise UserError(
            f"the data root {root} is not a folder: pass the folder that holds (or will hold) "
            f"cifar-10-batches-py with --data-root or ${DATA_ROOT_ENV}"
        )
    data = _load(root, download)
    train_images, train_labels, test_images, test_labels = (
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
    )
    if subset is not None:
        keep = class_balanced_indices(train_labels, subset)
        train_images, train_labels = train_images[keep], train_labels[keep]
    if test_subset is not None:
        keep = class_balanced_indices(test_labels, test_subset)
        test_images, test_labels = test_images[keep], test_labels[keep]
    return CIFAR10Data(train_images, train_labels, test_images, test_labels, data.classes, data.mean, data.std)

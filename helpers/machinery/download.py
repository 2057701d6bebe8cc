"""CIFAR-10 from a mirror, trusted only once it equals the official files.

The official server has answered at about 70-80 kB/s since 2026-06: most of an hour for its 163 MB. The
Hugging Face copy (the dataset uoft-cs/cifar10: two parquet files of PNG images and labels) arrives in
seconds. Nothing from it is used unless its decoded images and labels equal the official arrays: each
image and its label must hash to the digest this project computed from the official files
(cifar10_digests.npz, written by `python -m helpers.machinery.download --write-digests ROOT`), where a
mirror in another order is put into the official one; then the whole arrays must hash to the official
SHA-256. The verified arrays are kept as one .npz beside where the official files would be, and checked
again on every load.
"""

import hashlib
import http.client
import io
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from helpers import UserError
from helpers.machinery.files import advice, missing_folders, remove_empty, write_atomically

MIRROR_ENV = "CIFAR10_MIRROR"
OTHER_ROOT = "pass another folder with --data-root or $CIFAR10_ROOT"  # what else to do, for the data's files
MIRROR = "https://huggingface.co/datasets/uoft-cs/cifar10/resolve/main"
# The small test split first: a mirror that differs there is refused before the 50,000 training images.
SPLITS = {"test": "plain_text/test-00000-of-00001.parquet", "train": "plain_text/train-00000-of-00001.parquet"}
CACHE = "cifar-10-mirror.npz"  # the verified arrays, in the data root
DIGESTS = Path(__file__).with_name("cifar10_digests.npz")
ATTEMPTS = 4  # per file: a dropped connection resumes where it stopped
# A mirror slower than the official server (70-80 kB/s), on average once GRACE seconds have passed, is given up
# for the official download: a read's time-out alone lets a mirror that sends a byte now and then go on for years.
MIN_RATE, GRACE = 50_000, 30.0
# The most a split's file may hold: twice its images' raw bytes (PNG and parquet never double them), so that a
# wrong Content-Length, or a mirror that never stops, cannot fill the disk.
LARGEST = {"test": 2 * 10_000 * 3072, "train": 2 * 50_000 * 3072}


class MirrorError(Exception):
    """The mirror did not answer, or what it sent is not the official CIFAR-10."""


def mirror_base() -> str:
    """$CIFAR10_MIRROR (a base under which plain_text/*.parquet are found), else the Hugging Face copy."""
    base = (os.environ.get(MIRROR_ENV) or MIRROR).strip().rstrip("/")  # a pasted newline or space is no address
    try:
        address = urllib.parse.urlsplit(base)
    except ValueError:  # such as an IPv6 address left open: http://[::1
        address = None
    if address is None or address.scheme not in ("http", "https") or not address.netloc:
        raise UserError(f"${MIRROR_ENV} must be an http(s) address, got {base!r}: fix it, or unset it to use {MIRROR}")
    return base


def image_digests(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One 64-bit BLAKE2b digest per (image, label), as uint64."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(row.tobytes() + bytes([label]), digest_size=8).digest(), "little")
            for row, label in zip(flat, labels.astype(np.uint8), strict=True)
        ],
        dtype=np.uint64,
    )


def arrays_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the uint8 NHWC images followed by the int64 labels."""
    digest = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def official_order(split: str, images: np.ndarray, labels: np.ndarray):
    """The split's images and labels in the official order, checked against the official digests; raise
    MirrorError where they are not the official ones."""
    with np.load(DIGESTS) as shipped:
        official_sha256, expected = str(shipped[f"{split}_sha256"]), shipped[f"{split}_images"]
    if arrays_digest(images, labels) == official_sha256:  # the official arrays, in order
        return images, labels
    found = image_digests(images, labels)
    if len(found) != len(expected):
        raise MirrorError(f"its {split} split has {len(found):,} images, not the official {len(expected):,}")
    if not np.array_equal(found, expected):
        where = {digest: index for index, digest in enumerate(found.tolist())}  # duplicates are interchangeable
        missing = sum(digest not in where for digest in expected.tolist())
        if missing:
            raise MirrorError(f"{missing:,} of its {split} images or labels differ from the official ones")
        order = np.array([where[digest] for digest in expected.tolist()])
        images, labels = images[order], labels[order]
    if arrays_digest(images, labels) != official_sha256:
        raise MirrorError(f"its {split} split does not hash to the official SHA-256")
    return images, labels


def fetch(url: str, path: Path, largest: int):
    """Download `url` to `path` with a progress bar on stdout, resuming a dropped connection (HTTP Range)
    up to ATTEMPTS times; refuse a file of more than `largest` bytes and a mirror slower than MIN_RATE."""
    from tqdm import tqdm

    bar = None
    try:
        for attempt in range(ATTEMPTS):
            done = path.stat().st_size if path.exists() else 0
            request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
            try:
                with urllib.request.urlopen(request, timeout=30) as response, open(path, "ab") as file:
                    if done and response.status != 206:  # the server ignored the range: start again
                        file.truncate(0)
                        done = 0
                    total = done + (response.length or 0)  # Content-Length; none, or not a number: 0
                    if total > largest:
                        raise MirrorError(f"{url} announces {total / 1e6:,.1f} MB, more than the {largest / 1e6:,.1f} MB "
                                          f"CIFAR-10's file can take")  # fmt: skip
                    if bar is None:
                        bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, file=sys.stdout,
                                   desc=f"{path.name} ({f'{total / 1e6:.0f} MB' if total else 'size unknown'})")  # fmt: skip
                    started, received = time.monotonic(), 0
                    while chunk := response.read1(1 << 16):  # what has come, not a whole 64 kB: the rate is checked
                        write(file, chunk)
                        bar.update(len(chunk))
                        received += len(chunk)
                        check_pace(url, done + received, largest, received, time.monotonic() - started)
                if path.stat().st_size < total:
                    raise http.client.IncompleteRead(b"", total - path.stat().st_size)
                return
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:  # refused, or dropped
                dropped = bar is not None and not isinstance(error, urllib.error.HTTPError)
                if not dropped or attempt == ATTEMPTS - 1:
                    status = f" {error.code}" if isinstance(error, urllib.error.HTTPError) else ""  # 404, 500
                    raise MirrorError(f"{url} did not answer: {type(error).__name__}{status}") from None
                time.sleep(attempt)  # then resume from the bytes already on disk
    finally:
        if bar is not None:
            bar.close()


def write(file, chunk: bytes):
    """Append `chunk` to the download, flushed at once: a full disk is told apart from a mirror that stopped."""
    try:
        file.write(chunk)
        file.flush()
    except OSError as error:
        raise UserError(f"cannot write the download into {Path(file.name).parent.parent} ({error.strerror}): "
                        f"{advice(error, OTHER_ROOT)}") from None  # fmt: skip


def check_pace(url: str, size: int, largest: int, received: int, seconds: float):
    """Raise MirrorError for a file grown past `largest` bytes, or a download slower than MIN_RATE after GRACE."""
    if size > largest:
        raise MirrorError(f"{url} sent more than the {largest / 1e6:,.1f} MB CIFAR-10's file can take")
    if seconds > GRACE and received / seconds < MIN_RATE:
        raise MirrorError(f"{url} sent {received / 1e3:,.1f} kB in {seconds:.0f} s, slower than the "
                          f"{MIN_RATE / 1e3:.0f} kB/s of the official server")  # fmt: skip


def read_split(path: Path):
    """(uint8 NHWC images, int64 labels) from a parquet file of PNG images ('img': {'bytes'}) and 'label'."""
    import cv2  # albumentations' own image library: decodes a PNG faster than Pillow
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["img", "label"])
        pngs = [cell["bytes"] for cell in table.column("img").to_pylist()]
        images = np.stack([cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for png in pngs])
        labels = np.asarray(table.column("label").to_pylist(), dtype=np.int64)
    except Exception as error:  # not parquet, other columns, not PNG: all mean the same here
        raise MirrorError(f"{path.name} is not CIFAR-10 as parquet of PNG images ({type(error).__name__})") from None
    if images.shape[1:] != (32, 32, 3):
        raise MirrorError(f"{path.name} holds images of shape {images.shape[1:]}, not 32x32x3")
    return images, labels


def from_mirror(root: Path) -> dict:
    """Download both splits from the mirror, check them, and keep the arrays in root/CACHE.
    Returns {"train": (images, labels), "test": (images, labels)}; leaves nothing in root on failure."""
    base = mirror_base()
    print(f"downloading CIFAR-10 from {base} (checked against the official files before use)")
    made = missing_folders(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".cifar-10-mirror-") as folder:
            splits = {}
            for split, name in SPLITS.items():
                path = Path(folder) / Path(name).name
                fetch(f"{base}/{name}", path, LARGEST[split])
                splits[split] = official_order(split, *read_split(path))
            save_cache(root, splits)
        return splits
    except BaseException:
        remove_empty(made)
        raise


def save_cache(root: Path, splits: dict):
    """The verified arrays, written safely (files.write_atomically): a kill or a full disk leaves no half file."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{split}_{kind}": array for split, pair in splits.items()
                        for kind, array in zip(("images", "labels"), pair, strict=True)})  # fmt: skip
    write_atomically(root / CACHE, buffer.getvalue(), instead=OTHER_ROOT)


def from_cache(root: Path) -> dict | None:
    """The arrays a mirror download kept in root, checked again; None if there are none or they do not check."""
    path = root / CACHE
    if not path.is_file():
        return None
    try:
        saved = np.load(path)
        if not isinstance(saved, np.lib.npyio.NpzFile):  # one array (a .npy by that name): not what was kept
            return None
        with saved:
            arrays = {split: (saved[f"{split}_images"], saved[f"{split}_labels"]) for split in SPLITS}
        if not all(cifar10_shaped(*pair) for pair in arrays.values()):  # checked as arrays, not only as bytes
            return None
        return {split: official_order(split, *pair) for split, pair in arrays.items()}
    except (MirrorError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # damaged: download again
        return None


def cifar10_shaped(images: np.ndarray, labels: np.ndarray) -> bool:
    """uint8 images of shape (N, 32, 32, 3) and N integer labels: what the rest of the project reads."""
    return (
        images.dtype == np.uint8
        and images.shape[1:] == (32, 32, 3)
        and np.issubdtype(labels.dtype, np.integer)
        and labels.shape == images.shape[:1]
    )


def digests(splits: dict) -> dict:
    """What DIGESTS holds for {"train": (images, labels), "test": ...}: each image's digest, and each split's SHA-256."""
    values = {}
    for split, (images, labels) in splits.items():
        values[f"{split}_images"] = image_digests(images, labels)
        values[f"{split}_sha256"] = np.array(arrays_digest(images, labels))
    return values


def official_splits(root: Path) -> dict:
    """{"train": (images, labels), "test": ...} from the official files under `root`, MD5-checked by torchvision."""
    from torchvision.datasets import CIFAR10

    splits = {}
    for split in SPLITS:
        try:
            official = CIFAR10(str(root), train=split == "train", download=False)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted."
            raise UserError(
                f"no official CIFAR-10 files in {root / CIFAR10.base_folder}: pass the folder that holds them"
            ) from None
        splits[split] = official.data, np.asarray(official.targets, dtype=np.int64)
    return splits


def write_digests(root: Path) -> bool:
    """Compute the digests this module checks against from the official files under `root`, and write them
    safely (files.write_atomically), unless DIGESTS already holds the same: returns whether it wrote."""
    values = digests(official_splits(root))
    try:
        with np.load(DIGESTS) as shipped:
            if set(shipped) == set(values) and all(np.array_equal(shipped[key], values[key]) for key in values):
                return False
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # none yet, or damaged: write them
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **values)
    write_atomically(DIGESTS, buffer.getvalue(), instead="free some space and run it again")
    return True


if __name__ == "__main__":  # python -m helpers.machinery.download --write-digests ROOT (done once, shipped)
    if sys.argv[1:2] != ["--write-digests"] or len(sys.argv) != 3:
        sys.exit("usage: python -m helpers.machinery.download --write-digests ROOT")
    try:
        wrote = write_digests(Path(sys.argv[2]))
    except UserError as error:
        sys.exit(f"error: {error}")
    print(f"{'wrote' if wrote else 'unchanged:'} {DIGESTS} ({DIGESTS.stat().st_size:,} bytes)")

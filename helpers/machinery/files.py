"""Safe writes: every file a run or a command saves is written to a temporary file, flushed and
renamed over the old one, so a crash or a full disk leaves the previous version whole."""

import errno
import io
import json
import os
import tempfile
from pathlib import Path

from helpers import UserError

OTHER_OUT = "choose another --out"  # what else to do, for a run's files
# What a temporary file's name has after the name of the file it will replace: a mark no user's file has, so that
# only our own leftovers (a save killed between writing and renaming) are ever taken for ours.
PARTIAL = ".helpers-partial-"
ADVICE_BY_ERRNO = {  # by the failed write's errno; {instead}: OTHER_OUT, or the caller's own
    errno.ENOSPC: "free some space, or {instead}",
    errno.EDQUOT: "free some of your disk quota, or {instead}",
    errno.EFBIG: "raise the file-size limit (ulimit -f), or {instead}",
    errno.EACCES: "make the folder writable, or {instead}",
    errno.EPERM: "make the folder writable, or {instead}",
    errno.EROFS: "the disk is read-only: {instead}",
}


def advice(error: OSError, instead=OTHER_OUT) -> str:
    """What to do about a failed write, by its errno (ADVICE_BY_ERRNO), else `instead`."""
    return ADVICE_BY_ERRNO.get(error.errno, "{instead}").format(instead=instead)


def write_atomically(path, data: bytes, instead=OTHER_OUT):
    """Write via a temporary file in the same folder, then rename over `path` (atomic on POSIX).

    On any failure (a full disk, a file-size limit) the temporary file is removed and `path` is
    untouched; the OSError is raised as a UserError.
    """
    path = Path(path)
    temporary = None
    try:
        mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644  # a file replaced keeps its mode
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}")
        os.fchmod(handle, mode)  # mkstemp makes 0600; new results are meant to be shared
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"cannot write {path} ({error.strerror}): {advice(error, instead)}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def save_json(path, payload):
    write_atomically(path, json.dumps(payload, indent=1).encode() + b"\n")


def save_checkpoint(path, payload):
    import torch

    buffer = io.BytesIO()  # serialised first, so that a failed write is a plain OSError
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())


def missing_folders(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first: what mkdir(parents=True) makes."""
    return [folder for folder in (path, *path.parents) if not folder.exists()]


def remove_empty(folders: list[Path]):
    """Remove `folders` (deepest first, as missing_folders lists them), stopping at the first that is not empty:
    what a run or a download made and did not use is gone again, and anything put there since stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:  # stopped before it was made
            continue
        except OSError:
            break


def check_writable_folder(folder: Path, what: str, instead=OTHER_OUT):
    """Create `folder` if needed and check that files can be written there, or raise a UserError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"cannot write to {what} {folder} ({error.strerror}): {advice(error, instead)}") from None

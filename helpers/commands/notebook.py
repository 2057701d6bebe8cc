"""`setup()`, called by the first cell of every notebook (after that cell has put the project on the path).
In Colab it works from the project's notebooks/ folder, as locally.

In Colab it installs the packages Colab lacks, at the versions in requirements.txt, never touching
Colab's own torch. Everywhere it makes a UserError, or an interrupted run, show as the one line the
commands print, and says where the notebook's data comes from.
Only the standard library is imported at the top: in Colab this runs before anything is installed.
"""

import importlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers import PROJECT_ROOT

# What a Colab runtime may lack or have at another version; torch and torchvision are Colab's own.
COLAB_PACKAGES = ("albumentations", "torchsummary", "captum")
PROTECTED = ("torch", "torchvision")


def pinned_versions(requirements: Path = PROJECT_ROOT / "requirements.txt") -> dict:
    """{package: version} for every `name==version` line of a requirements file."""
    pins = {}
    for line in requirements.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.strip().lower()] = version.strip()
    return pins


def installed_version(name: str):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_packages(pins: dict, installed=installed_version) -> list[str]:
    """`name==version` for each of COLAB_PACKAGES whose pinned version is not installed."""
    return [f"{name}=={pins[name]}" for name in COLAB_PACKAGES if installed(name) != pins[name]]


def pip_install(requirements: list[str], installed=installed_version) -> list[str]:
    """The pip command that installs `requirements` while holding torch and torchvision where they are."""
    held = [f"{name}=={installed(name)}" for name in PROTECTED if installed(name)]
    constraints = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    constraints.write("\n".join(held) + "\n")
    constraints.close()
    return [sys.executable, "-m", "pip", "install", "-q", *requirements, "--constraint", constraints.name]


def show_errors_in_one_line(shell):
    """A UserError, an interrupt that says what was saved, or a name that a cell uses before the cell that
    defines it has run, shows as one line instead of a traceback."""
    from helpers import UserError

    def one_line(shell, kind, error, traceback, tb_offset=None):
        last = traceback
        while last is not None and last.tb_next is not None:
            last = last.tb_next
        if isinstance(error, UserError):
            print(f"error: {error}", file=sys.stderr)
        elif isinstance(error, NameError) and last is not None and last.tb_frame.f_globals is shell.user_ns:
            print(
                f"error: {error}: run the cells above this one first (Run > Run All Above Selected Cell)",
                file=sys.stderr,
            )
        elif isinstance(error, KeyboardInterrupt) and error.args:  # an interrupted run says what it saved
            print(error.args[0], file=sys.stderr)
        else:
            return shell.showtraceback((kind, error, traceback), tb_offset=tb_offset)

    shell.set_custom_exc((UserError, KeyboardInterrupt, NameError), one_line)


def setup():
    """Prepare a notebook: in Colab install what it lacks; everywhere show errors in one line and say
    where the data comes from. (Notebook 4, which trains, says which device and precision it uses.)"""
    in_colab = "google.colab" in sys.modules
    if in_colab:
        os.chdir(PROJECT_ROOT / "notebooks")  # as locally: ../img and ../runs are the project's
        needed = missing_packages(pinned_versions())
        if needed:
            print("installing", ", ".join(needed), "(torch and torchvision stay Colab's own)")
            subprocess.run(pip_install(needed), check=True)
            importlib.invalidate_caches()
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        show_errors_in_one_line(shell)

    from helpers.data import DATA_ROOT_ENV, resolve_data_root
    from helpers.machinery.download import CACHE

    where = f"${DATA_ROOT_ENV}" if os.environ.get(DATA_ROOT_ENV) else "the project's data/ folder"
    root = resolve_data_root()
    if (root / "cifar-10-batches-py").is_dir():
        data = f"CIFAR-10 from {where}"
    elif (root / CACHE).is_file():  # what a mirror download kept, checked again when loaded
        data = f"CIFAR-10 from {where} (the arrays a checked mirror download kept)"
    else:
        data = (
            f"CIFAR-10 will be downloaded into {where} on first use (from a mirror checked against the official files)"
        )
    # No paths: the saved notebook is what every reader sees first.
    print(f"{'Colab' if in_colab else 'local'}: {data}")

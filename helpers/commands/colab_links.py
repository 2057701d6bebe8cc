"""The "Open in Colab" badge and the set-up cell of every notebook, written from one address.

The public address of the repository lives in pyproject.toml, [project.urls] Repository.
`python -m helpers colab-links` (`make colab-links`) rewrites the first two cells of every notebook
from it; tests/test_notebooks.py fails when a notebook disagrees. Until the address is known (the
placeholder github.com/OWNER/REPO), the badge and the cell say so, and how to set it.
"""

import json
import re
import tomllib
from pathlib import Path

from helpers import PROJECT_ROOT, UserError
from helpers.commands.cli import OneLineParser, run_command
from helpers.machinery.files import write_atomically

NOTEBOOKS = PROJECT_ROOT / "notebooks"
PLACEHOLDER = "https://github.com/OWNER/REPO"
# GitHub's owner and repository names: letters, digits, '-', '_' and '.'; an optional .git or slash.
GITHUB_URL = re.compile(r"(https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?")
UNSET = "set Repository under [project.urls] in pyproject.toml, then run make colab-links"
COLAB_DIR = "/content/cnn-cifar10"


def repository_url(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> str | None:
    """The repository's public address (https://github.com/OWNER/REPO), or None while it is the placeholder."""
    try:
        url = tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{pyproject} has no [project.urls] Repository ({type(error).__name__}): {UNSET}") from None
    match = GITHUB_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None or match.group(1).rsplit("/", 1)[1] in (".", ".."):  # GitHub names no repository so
        raise UserError(f"Repository in {pyproject} must be https://github.com/OWNER/REPO, got {url!r}")
    url = match.group(1)
    return None if url == PLACEHOLDER else url


def badge(url: str | None, notebook: str) -> str:
    """The Colab badge for a checked address (repository_url); while it is unknown, where to read how to run."""
    if url is None:  # what to do about it is the maintainer's business (README, make colab-links), not the learner's
        return "**Run this notebook** in JupyterLab (`make lab`) or in Google Colab: see the [README](../README.md)."
    path = url.removeprefix("https://github.com/")
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook})"
    )


def setup_cell(url: str | None) -> str:
    """Five lines: in Colab (only), clone the project once into COLAB_DIR and import it from there; everywhere,
    helpers.commands.setup() (Colab's missing packages, one-line errors, where the data comes from)."""
    return f"""import os, sys  # set-up, safe to run twice: in Colab, fetch the project once and import it
if 'google.colab' in sys.modules and not os.path.isdir({COLAB_DIR!r}):
    !git clone -q --depth 1 {url or PLACEHOLDER} {COLAB_DIR}
if 'google.colab' in sys.modules: sys.path.insert(0, {COLAB_DIR!r})  # Colab only
from helpers.commands import setup; setup()"""


def colab_test_cell() -> str:
    """The cell a learner pastes into a Colab GPU runtime after the set-up cell (README, docs/colab.md): nbval, the
    one thing Colab lacks for it (at the version requirements.txt pins), then the five notebooks as tests, notebook 4
    one short epoch (SMOKE=1; without it, notebook 4 trains the recipe on the GPU)."""
    from helpers.commands.notebook import pinned_versions

    return (
        f"!pip install -q nbval=={pinned_versions()['nbval']}\n"
        f"!cd {COLAB_DIR} && SMOKE=1 python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env notebooks"
    )


def first_cells(url: str | None, notebook: str) -> list[dict]:
    """The badge (markdown) and set-up (code) cells that open every notebook."""
    return [
        {"cell_type": "markdown", "id": "colab-badge", "metadata": {}, "source": lines(badge(url, notebook))},
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "setup",
            "metadata": {},
            "outputs": [],
            "source": lines(setup_cell(url)),
        },
    ]


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def cell_text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def notebook_agrees(notebook: dict, url: str | None, name: str) -> bool:
    """Whether cells 2 and 3 (after the title) are the badge and set-up cell for `url`."""
    expected = first_cells(url, name)
    actual = notebook["cells"][1:3]
    return len(actual) == 2 and all(
        cell_text(a) == cell_text(e) and a["cell_type"] == e["cell_type"] for a, e in zip(actual, expected, strict=True)
    )


def rewrite(path: Path, url: str | None) -> bool:
    """Put the badge and set-up cell for `url` after the title cell of `path`; True if it changed."""
    try:
        notebook = json.loads(path.read_text())
        cells = notebook["cells"]
        well_formed = isinstance(cells, list) and all(
            isinstance(c, dict) and {"cell_type", "source"} <= c.keys() for c in cells
        )
        if not (cells and well_formed):
            raise ValueError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path} is not a notebook with cells ({type(error).__name__}): restore it with git") from None
    if notebook_agrees(notebook, url, path.name):
        return False
    badge_cell, code_cell = first_cells(url, path.name)
    has_old = len(cells) > 2 and "Colab" in cell_text(cells[1]) and "google.colab" in cell_text(cells[2])
    if has_old:
        code_cell["outputs"] = cells[2].get("outputs", [])
    notebook["cells"] = [cells[0], badge_cell, code_cell, *cells[3 if has_old else 1 :]]
    # Written whole or not at all: a full disk or a file-size limit leaves the notebook as it was.
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    write_atomically(path, text.encode(), instead="run make colab-links again once it can write there")
    return True


def write_links(argv) -> int:
    parser = OneLineParser(prog="python -m helpers colab-links", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    url = repository_url()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{path.name}: {'rewritten' if rewrite(path, url) else 'up to date'}")
    print(f"repository: {url or 'unknown (' + UNSET + ')'}")
    return 0


def main(argv=None) -> int:
    return run_command(write_links, argv)

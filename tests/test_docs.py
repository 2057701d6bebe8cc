"""What the texts name is there: every file or folder of this project and every helpers module or name that the
README, docs/ or a notebook names (a notebook once cited a test file that did not exist)."""

import importlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = "helpers|tests|scripts|docs|results|notebooks|img"
# A path of this project in running text: helpers/machinery/files.py, tests/test_augment.py, results/seed1-100ep
PATH = re.compile(rf"(?<![\w/.-])((?:{TOP})/[\w.-]+(?:/[\w.-]+)*)")
LINK = re.compile(r"\]\(([^)\s#]+)")  # a markdown link's target
NAME = re.compile(r"(?<![\w./-])(helpers(?:\.\w+)+)")  # helpers.machinery.cpu_dropout.Dropout


def texts() -> dict[Path, str]:
    found = {path: path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        found[path] = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    return found


def named_paths(path: Path, text: str) -> set[Path]:
    paths = {ROOT / match.rstrip(".") for match in PATH.findall(text) if match != "img/s"}  # images per second
    links = [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]
    return paths | {(path.parent / target).resolve() for target in links}


def resolves(name: str) -> bool:
    """helpers.a.b.c is a module, or a name inside the longest module it starts with."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            thing = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(thing, part):
                return False
            thing = getattr(thing, part)
        return True
    return False


def test_every_project_path_a_text_names_exists():
    missing = [f"{path.name} names {named.relative_to(ROOT)}" for path, text in texts().items()
               for named in sorted(named_paths(path, text)) if not named.exists()]  # fmt: skip
    assert missing == []


def test_every_helpers_name_a_text_names_exists():
    wrong = [f"{path.name} names {name}" for path, text in texts().items()
             for name in sorted(set(NAME.findall(text))) if not resolves(name)]  # fmt: skip
    assert wrong == []


def test_a_missing_path_or_name_is_caught():
    text = "see `tests/test_fast_augment.py`, [the docs](../docs/nowhere.md) and `helpers.machinery.trainer`"
    assert {named.name for named in named_paths(ROOT / "notebooks" / "x.ipynb", text)} == {
        "test_fast_augment.py",
        "nowhere.md",
    }
    assert not resolves("helpers.machinery.trainer") and resolves("helpers.machinery.cpu_dropout.Dropout")

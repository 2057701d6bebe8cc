"""The notebooks where learners run them: one public address, a Colab kernel (simulated), and `make lab`."""

import contextlib
import copy
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.commands.colab_links import COLAB_DIR, PLACEHOLDER, colab_test_cell, notebook_agrees, repository_url
from helpers.commands.notebook import missing_packages, pinned_versions, pip_install

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_the_badge_and_set_up_cell_of_the_address_in_pyproject(path):
    assert notebook_agrees(json.loads(path.read_text()), repository_url(), path.name), "run make colab-links"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_thin(path):
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    assert not [line for source in code for line in source.splitlines() if re.match(r"\s*(def|class) ", line)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_learner_meets_a_short_set_up_cell_and_no_note_for_the_maintainer(path):
    cells = nbformat.read(path, as_version=4).cells
    setup = cells[2].source.splitlines()
    assert len(setup) <= 5 and max(len(line) for line in setup) <= 100
    text = "\n".join(cell.source for cell in cells)
    assert not any(note in text for note in ("make colab-links", "[project.urls]", "pyproject.toml", "public address"))


def test_every_lesson_module_is_read_by_a_notebook():
    """helpers' top level is the lesson: each module there is imported by a notebook and named in the layout."""
    code = "\n".join(cell.source for path in NOTEBOOKS for cell in nbformat.read(path, as_version=4).cells)
    imported = set(re.findall(r"^from helpers\.(\w+) import", code, flags=re.M))
    lessons = {path.stem for path in (ROOT / "helpers").glob("*.py")} - {"__init__", "__main__"}
    assert lessons <= imported, lessons - imported
    layout = (ROOT / "docs" / "layout.md").read_text()
    assert all(f"  {lesson}.py " in layout for lesson in lessons)


# What each committed notebook shows: its figures, inline, as GitHub and Colab show them before any run.
FIGURES = {
    "01_data.ipynb": 3,
    "02_augmentation.ipynb": 3,
    "03_model.ipynb": 3,
    "04_train.ipynb": 4,
    "05_analysis.ipynb": 5,
}
MACHINE_PATH = re.compile(r"(?<![\w.])/(home|root|tmp|work|Users|mnt|opt|var|content)/|\b[A-Z]:\\\\")
# The kernel JupyterLab and Colab start for a Python notebook; a notebook saved with another name turns
# "modified" the moment it is opened.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_committed_notebook_shows_its_figures_and_nothing_of_the_machine_that_ran_it(path):
    notebook = json.loads(path.read_text())
    outputs = [output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == FIGURES[path.name], "run make notebooks"
    assert not MACHINE_PATH.search(json.dumps(outputs)), MACHINE_PATH.search(json.dumps(outputs))
    assert "widget" not in json.dumps(notebook["metadata"]) and "widget-view" not in json.dumps(outputs)
    assert notebook["metadata"]["kernelspec"] == KERNELSPEC


# What a learner's save in JupyterLab would change, or a rerun would not repeat: timings of cells and of
# progress bars, widget state, output on stderr (pink), and test plumbing in the code a learner reads.
TIMING = re.compile(r"\d+:\d\d<\d+:\d\d|\d+:\d\d,|[\d.]+(it|s)/(s|it)\b")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_committed_notebook_holds_nothing_a_save_or_a_rerun_would_change(path):
    cells = json.loads(path.read_text())["cells"]
    assert not [cell["id"] for cell in cells if "execution" in cell["metadata"]], "run make notebooks"
    outputs = json.dumps([cell.get("outputs", []) for cell in cells])
    assert "model_id" not in outputs and not TIMING.search(outputs), TIMING.search(outputs)
    assert not [o for cell in cells for o in cell.get("outputs", []) if o.get("name") == "stderr"]
    assert not [cell["id"] for cell in cells if re.search(r"#\s*NBVAL|nbval", "".join(cell["source"]), re.I)]


# A stand-in for Colab's start-up, run by the kernel before the first cell, as Colab imports google.colab.
COLAB_STARTUP = """
import importlib.util, os, sys, types
colab = types.ModuleType("google.colab")
try:
    import google
except ImportError:
    google = sys.modules["google"] = types.ModuleType("google")
google.colab = sys.modules["google.colab"] = colab
# This kernel must not see the checkout that runs the test: no editable install, no path to it.
editable = lambda item: getattr(item, "__module__", "").startswith("__editable__")
sys.meta_path[:] = [finder for finder in sys.meta_path if not editable(finder)]
sys.path_hooks[:] = [hook for hook in sys.path_hooks if not editable(hook)]
sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != {root!r}]
sys.path_importer_cache.clear()
assert importlib.util.find_spec("helpers") is None, "helpers is importable before the set-up cell"
"""


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A git repository holding this working tree as it is now, for the set-up cell to clone."""
    source = tmp_path_factory.mktemp("origin")
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *command], cwd=source, check=True)
    return f"file://{source}"


# What each notebook writes into the clone: helpers came from the clone, and ../runs is the clone's.
WRITTEN = {
    "01_data.ipynb": "runs/figures/cifar10.png",
    "02_augmentation.ipynb": "runs/figures/albumentation.png",
    "03_model.ipynb": "runs/figures/rf_growth.png",
    "04_train.ipynb": "runs/notebook-smoke/history.json",
    "05_analysis.ipynb": "runs/figures/gradcam.png",
}


# The tag of the cells whose output must equal the committed one: results that depend on neither the machine,
# nor the run's size, nor the time.
CHECK_OUTPUT = "nbval-check-output"  # nbval's own tag


def shown_text(cell) -> str:
    """What a cell printed and returned, as text."""
    return "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "") for output in cell.outputs)


# The notebooks as a learner runs them in Colab (marker `notebooks`, run by `make colab-check` on Colab's package set;
# `make test` runs them with nbval): every cell without an error, the set-up cell cloning the project, and the cells
# tagged nbval-check-output showing what the committed notebook shows, as nbval checks them.
@pytest.mark.notebooks
@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_a_notebook_runs_as_in_colab_from_its_first_cell(origin, data_root, tmp_path, monkeypatch, name):
    ipython_dir = tmp_path / "ipython"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-colab.py").write_text(COLAB_STARTUP.format(root=str(ROOT)))
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    monkeypatch.setenv("CIFAR10_ROOT", str(data_root))  # Colab would download it; this machine has no internet
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("SMOKE", "1")  # notebook 4: one short epoch
    monkeypatch.delenv("FIGURES_DIR", raising=False)
    content, project = tmp_path / "content", tmp_path / "content" / "cnn-cifar10"
    content.mkdir()

    committed = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    notebook = copy.deepcopy(committed)
    setup = notebook.cells[2]
    setup.source = setup.source.replace(repository_url() or PLACEHOLDER, origin)  # a clone of this tree, and
    setup.source = setup.source.replace(COLAB_DIR, str(project))  # where Colab's would be, for the test only
    notebook.cells.insert(3, copy.deepcopy(setup))  # a learner runs the first cell twice

    needed = missing_packages(pinned_versions())  # what this Python lacks: nothing; on Colab's set, captum
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(content)}}
    ).execute()

    first, second = (shown_text(cell) for cell in notebook.cells[2:4])
    assert first.startswith(f"installing {', '.join(needed)} (") if needed else "installing" not in first
    assert first.splitlines()[-1].startswith("Colab: CIFAR-10") and second.startswith("Colab:")  # run twice
    assert (project / "notebooks" / name).exists()
    assert (project / WRITTEN[name]).exists()
    ran = notebook.cells[:3] + notebook.cells[4:]  # without the set-up cell run twice
    checked = [
        (old, new)
        for old, new in zip(committed.cells, ran, strict=True)
        if CHECK_OUTPUT in old.metadata.get("tags", [])
    ]
    assert len(checked) == {"01_data.ipynb": 1, "03_model.ipynb": 3}.get(name, 0)
    for old, new in checked:
        assert shown_text(new) == shown_text(old), new.source


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.lab
def test_make_lab_serves_jupyterlab_headless(tmp_path):
    port = free_port()
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        ["make", "-s", "lab", "HEADLESS=1", f"PORT={port}"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None and "JupyterLab" in page, (tmp_path / "lab.log").read_text()
        kernels = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs", timeout=5).read())
        assert kernels["default"] == "python3"
        opened = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).geturl()
        assert opened.endswith("/lab/tree/notebooks")  # opens on the notebooks, in the project's root:
        for linked in ("README.md", "docs/results.md", "notebooks/01_data.ipynb"):  # the notebooks' links lead there
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/{linked}?content=0", timeout=5)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_the_readme_and_the_colab_page_give_the_colab_test_cell():
    for page in ("README.md", "docs/colab.md"):
        assert colab_test_cell() in (ROOT / page).read_text(), page


@pytest.mark.notebooks
def test_the_colab_test_cell_runs_the_five_notebooks_with_nbval_in_the_clone(origin, data_root, tmp_path):
    project = tmp_path / "content" / "cnn-cifar10"  # where the set-up cell cloned the project
    subprocess.run(["git", "clone", "-q", "--depth", "1", origin, str(project)], check=True)
    needed = missing_packages(pinned_versions())  # what the learner's set-up cell installed before: captum
    if needed:
        subprocess.run(pip_install(needed), check=True, capture_output=True)
    # nbval's kernels, unlike Colab's own, do not import google.colab, so setup() there works as it does locally,
    # in notebooks/ (nbval's working folder). In Colab the set-up cell's sys.path makes the clone importable;
    # here the clone lies elsewhere, so PYTHONPATH does that. Colab's python and pip are this Python's.
    env = {**os.environ, "PYTHONPATH": str(project), "CIFAR10_ROOT": str(data_root), "MPLBACKEND": "Agg",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    for line in colab_test_cell().splitlines():
        command = line.removeprefix("!").replace(COLAB_DIR, str(project))
        result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
    assert re.search(r"^\d+ passed", result.stdout.splitlines()[-1]) and "failed" not in result.stdout
    assert (project / "runs" / "notebook-smoke" / "history.json").exists()  # notebook 4 trained in the clone


@pytest.mark.parametrize("yours", ["the recipe, finished", "a preview, finished", "the recipe, unfinished", None])
def test_notebook_5_analyses_a_finished_recipe_run_of_notebook_4_and_names_a_preview(yours, tmp_path, monkeypatch):
    cells = [cell.source for cell in nbformat.read(ROOT / "notebooks" / "05_analysis.ipynb", as_version=4).cells]
    choose, compare = (next(source for source in cells if marker in source) for marker in ("RUN = ", "verdict(yours)"))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "results").symlink_to(ROOT / "results")
    if yours is not None:  # notebook 4's run: the reference run's history, as if the learner's
        history = json.loads((ROOT / "results" / "seed1-100ep" / "history.json").read_text())
        if "preview" in yours:
            history["config"].update(epochs=5, subset=5000, test_subset=2000)
            history["epochs"] = history["epochs"][:5]
        if "unfinished" in yours:
            history["epochs"] = history["epochs"][:40]
        (tmp_path / "runs" / "notebook").mkdir(parents=True)
        (tmp_path / "runs" / "notebook" / "history.json").write_text(json.dumps(history))
    monkeypatch.chdir(tmp_path / "notebooks")
    namespace = {}
    exec(choose, namespace)  # the notebook's own cells
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compare, namespace)
    analysed = namespace["RUN"].as_posix()
    if yours == "the recipe, finished":
        assert analysed == "../runs/notebook" and printed.getvalue().startswith("Your run reproduced the published")
    elif yours == "a preview, finished":
        assert analysed == "../results/seed1-100ep" and printed.getvalue().startswith("Your run is a preview (5 epoch")
    else:
        assert analysed == "../results/seed1-100ep" and printed.getvalue().startswith("No finished run of notebook 4")

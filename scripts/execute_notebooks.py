"""Execute notebooks in place, in the form a learner first sees them on GitHub or in Colab (`make notebooks`).

The kernel draws with the inline backend, so every figure is in the saved outputs, and writes the
figures the README shows into img/ (FIGURES_DIR). What is saved carries no timings and no widget
state (cells tagged "interactive" are saved without outputs), progress bars as their last line of text
without times or rates, and names the kernel JupyterLab starts, so that opening a notebook leaves it
unmodified.
Usage: python scripts/execute_notebooks.py NOTEBOOK...   (SMOKE=1: notebook 4 trains one short epoch)
"""

import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def execute(path: Path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=None, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()
    # A progress bar's text redraws (carriage returns) kept as its last state, one stream per cell.
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timings of an earlier run (JupyterLab drops them on save)
        if "interactive" in cell.metadata.get("tags", []):  # widgets are run live, never saved half-alive
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.kernelspec = KERNELSPEC
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)


if __name__ == "__main__":
    os.environ.pop("MPLBACKEND", None)  # the kernel's own default: inline
    os.environ["FIGURES_DIR"] = str(ROOT / "img")
    # Progress bars without their times and rates (tqdm reads TQDM_* variables): a rerun gives the same text.
    os.environ["TQDM_BAR_FORMAT"] = "{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}"
    for name in sys.argv[1:]:
        # No run of notebook 4's in runs/notebook: notebook 4 trains afresh (it would load the finished run an
        # earlier `make notebooks` left there), and notebook 5 shows what a learner sees before training one.
        shutil.rmtree(ROOT / "runs" / "notebook", ignore_errors=True)
        print(f"executing {name}", flush=True)
        execute(Path(name).resolve())

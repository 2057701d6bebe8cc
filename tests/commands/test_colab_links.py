"""One public address in pyproject.toml: every notebook's Colab badge and set-up cell written from it."""

import errno
import json
import os
import shutil
import sys
import types

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from helpers import UserError
from helpers.commands import colab_links
from helpers.commands.colab_links import COLAB_DIR, badge, notebook_agrees, repository_url, rewrite, setup_cell
from running import ROOT, invoke, one_line


def test_a_known_address_gives_a_colab_badge_and_an_unknown_one_points_the_learner_to_the_readme(tmp_path):
    url = "https://github.com/someone/cnn-cifar10"
    assert "colab.research.google.com/github/someone/cnn-cifar10/blob/main/notebooks/01_data.ipynb" in badge(
        url, "01_data.ipynb"
    )
    assert f"git clone -q --depth 1 {url} /content/cnn-cifar10" in setup_cell(url)
    assert "README" in badge(None, "01_data.ipynb") and "OWNER/REPO" in setup_cell(None)
    for address in (url, None):  # valid IPython either way; at most 5 lines of at most 100 characters
        assert TransformerManager().check_complete(setup_cell(address)) == ("complete", None)
        assert len(setup_cell(address).splitlines()) <= 5 and max(map(len, setup_cell(address).splitlines())) <= 100
    notebook = tmp_path / "01_data.ipynb"
    shutil.copy(ROOT / "notebooks" / "01_data.ipynb", notebook)
    assert rewrite(notebook, url) and notebook_agrees(json.loads(notebook.read_text()), url, notebook.name)
    assert not notebook_agrees(json.loads(notebook.read_text()), None, notebook.name)
    assert not rewrite(notebook, url)  # already agrees: unchanged


@pytest.mark.parametrize(
    "pyproject, message",
    [
        ('[project]\nname = "x"\n', "has no \\[project.urls\\] Repository"),
        ("[project.urls]\nRepository = 42\n", "must be https://github.com/OWNER/REPO, got 42"),
        ('[project.urls]\nRepository = "https://github.com/a/b?x=1"\n', "must be https://github.com/OWNER/REPO"),
        ('[project.urls]\nRepository = "https://github.com/a/b)[x](javascript:alert(1))"\n', "must be https"),
        ('[project.urls]\nRepository = "https://github.com/a/b\\nc"\n', "must be https"),
        ('[project.urls]\nRepository = "https://gitlab.com/a/b"\n', "must be https://github.com"),
        ('[project.urls]\nRepository = "https://github.com/a/.."\n', "must be https://github.com/OWNER/REPO"),
        ('[project.urls]\nRepository = "https://github.com/a/./"\n', "must be https://github.com/OWNER/REPO"),
    ],
)
def test_colab_links_take_only_a_github_repository_address(tmp_path, pyproject, message):
    (tmp_path / "pyproject.toml").write_text(pyproject)
    with pytest.raises(UserError, match=message):
        repository_url(tmp_path / "pyproject.toml")


def test_colab_links_read_the_placeholder_with_or_without_git_as_unknown(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/OWNER/REPO.git"\n')
    assert repository_url(tmp_path / "pyproject.toml") is None
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/someone/cnn.git"\n')
    assert repository_url(tmp_path / "pyproject.toml") == "https://github.com/someone/cnn"


@pytest.mark.parametrize("in_colab", [False, True], ids=["elsewhere", "in Colab"])
def test_the_set_up_cell_imports_colabs_copy_in_colab_only(tmp_path, monkeypatch, in_colab):
    copy = tmp_path / "content" / "cnn-cifar10"  # a folder of that name on a shared machine, say
    copy.mkdir(parents=True)
    cell = setup_cell("https://github.com/someone/cnn-cifar10").replace(COLAB_DIR, str(copy))
    code = TransformerManager().transform_cell(cell.rsplit("\n", 1)[0])  # all but setup() itself
    shell = types.SimpleNamespace(system=lambda command: pytest.fail(f"cloned again: {command}"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(code, {"get_ipython": lambda: shell})
    assert (sys.path[0] == str(copy)) is in_colab


@pytest.mark.parametrize("content", ["{not json", '{"cells": []}', '{"nbformat": 4}'])
def test_colab_links_refuse_a_notebook_that_is_not_one(tmp_path, monkeypatch, content):
    (tmp_path / "01_x.ipynb").write_text(content)
    with pytest.raises(UserError, match="is not a notebook with cells"):
        rewrite(tmp_path / "01_x.ipynb", None)
    monkeypatch.setattr(colab_links, "NOTEBOOKS", tmp_path)
    assert "is not a notebook with cells" in one_line(invoke("colab-links"))


@pytest.mark.parametrize("error", [errno.EFBIG, errno.ENOSPC])
def test_a_notebook_is_rewritten_whole_or_not_at_all(tmp_path, monkeypatch, error):
    notebook = tmp_path / "01_data.ipynb"
    shutil.copy(ROOT / "notebooks" / "01_data.ipynb", notebook)
    before = notebook.read_bytes()

    def refused(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr("tempfile.mkstemp", refused)
    with pytest.raises(UserError, match="run make colab-links again once it can write there"):
        rewrite(notebook, "https://github.com/someone/cnn-cifar10")
    assert notebook.read_bytes() == before

"""`python -m helpers summary`: the results table, and the spread of several seeds."""

import numpy as np
import pytest

from helpers.analysis import run_summary
from helpers.commands.summary import report, run_names, spread, summary_table
from running import invoke, one_line
from runs import LONG, history


def test_spread_gives_mean_std_and_the_fraction_that_reached_85_9():
    summaries = [run_summary(history(accuracies)) for accuracies in ([0.85, 0.86], [0.85, 0.858], [0.86, 0.859])]
    stats = spread(summaries)
    assert stats["best"][0] == pytest.approx(np.mean([0.86, 0.858, 0.86]))
    assert stats["last"][1] == pytest.approx(np.std([0.86, 0.858, 0.859], ddof=1))
    assert stats["reached"] == pytest.approx(2 / 3) and stats["first_epoch_published"] == 1.5


def test_the_report_of_several_runs_adds_their_spread_and_the_share_that_reached_85_9():
    runs = {"a": history([0.85, 0.86], seed=1), "b": history([0.85, 0.858], seed=2)}
    text = report(runs)
    assert text.startswith(summary_table({name: run_summary(h) for name, h in runs.items()}))
    assert (
        text.splitlines()[-1] == "over 2 runs: best 85.90% ± 0.14%, last 85.90% ± 0.14% (mean ± std); 50% reached 85.9%"
    )
    assert report({"a": runs["a"]}) == summary_table({"a": run_summary(runs["a"])})  # one run: no spread
    assert "not reached" in report({"short": history([0.5, 0.6])})
    longer = history([0.85, 0.86, 0.87])
    longer["config"] = {**longer["config"], "epochs": 3}
    assert report({"a": runs["a"], "c": longer}).endswith("no spread: the runs differ in more than the seed (epochs)")


@pytest.mark.parametrize(
    "runs, says",
    [
        ({"x": history([0.8, 0.9], seed=3), "x-copy": history([0.8, 0.9], seed=3)}, "runs share a seed (3)"),
        (
            {"p": history([0.7], seed=4), "q": history([0.6], seed=5), "r": history([0.5], seed=4)},
            "runs share a seed (4)",
        ),
    ],
    ids=["a copy of a run", "two of three with one seed"],
)
def test_the_spread_counts_each_run_once(runs, says):
    assert report(runs).splitlines()[-1].startswith(f"no spread: {says}")


def test_the_spread_leaves_out_an_unfinished_run_and_says_where_runs_differ():
    unfinished = history([0.5, 0.6], seed=8)
    unfinished["config"] = {**unfinished["config"], "epochs": 7}
    finished = history([0.5, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8], seed=9)
    assert report({"u": unfinished, "f": finished}).endswith("no spread: not every run finished: u (2 of 7 epochs)")
    elsewhere = history([0.84, 0.85], seed=6, device="NVIDIA T4")
    line = report({"a": history([0.85, 0.86], seed=5), "b": elsewhere}).splitlines()[-1]
    assert line.startswith("over 2 runs") and line.endswith(
        "; on 2 different devices or torch versions (see the table)"
    )


def test_a_name_or_device_cannot_add_a_row_or_a_column_to_the_table():
    sneaky = history([0.8], seed=2, device="GPU | 99.99% |\n| fake | 1 |")
    table = summary_table({"a|b\nc": run_summary(sneaky)})
    assert len(table.splitlines()) == 3 and table.splitlines()[-1].count("|") == 10


def test_summary_names_every_run_apart(tmp_path, monkeypatch):
    assert run_names(["runs/a", "other/b/"]) == ["a", "b"]
    assert run_names(["a/run", "b/run"]) == ["a/run", "b/run"]  # the same folder name twice: the paths
    monkeypatch.chdir(tmp_path)
    assert run_names(["."]) == [tmp_path.name]


def test_summary_of_a_long_name_or_a_loop_of_links_is_one_line(tmp_path):
    assert "cannot" in one_line(invoke("summary", LONG))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert "cannot read history" in one_line(invoke("summary", str(tmp_path / "loop")))

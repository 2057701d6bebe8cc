import numpy as np
import pytest

from helpers.analysis import confusion_matrix, per_class_accuracy
from helpers.seeds import parse_seeds
from helpers.summary import first_epoch_at, report, run_summary, spread, summary_table


def history(accuracies):
    epochs = [{"epoch": i + 1, "test_acc": a, "seconds": 2.0} for i, a in enumerate(accuracies)]
    return {"meta": {"device": "test device"}, "config": {"amp": True}, "epochs": epochs}  # saved before --precision


def test_summary_finds_best_last_and_first_epochs_at_thresholds():
    summary = run_summary(history([0.5, 0.851, 0.86, 0.859, 0.855]))
    assert (summary["best_acc"], summary["best_epoch"], summary["last_acc"]) == (0.86, 3, 0.855)
    assert (summary["first_epoch_85"], summary["first_epoch_published"]) == (2, 3)
    assert (summary["seconds_per_epoch"], summary["seconds_total"]) == (2.0, 10.0)
    assert summary["precision"] == "bf16"  # amp=True meant bf16 autocast


def test_threshold_never_reached_is_none_and_shown_as_such():
    assert first_epoch_at(history([0.5, 0.6])["epochs"], 0.859) is None
    assert "not reached" in summary_table({"short": history([0.5, 0.6])})


def test_confusion_matrix_counts_true_by_predicted():
    labels, predictions = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(labels, predictions, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    np.testing.assert_allclose(per_class_accuracy(matrix), [0.5, 1.0, 2 / 3])


def test_seeds_are_parsed_as_ranges_and_lists():
    assert parse_seeds("1-8") == list(range(1, 9)) and parse_seeds("1-3,7") == [1, 2, 3, 7] and parse_seeds("5") == [5]


def test_spread_gives_mean_std_and_the_fraction_that_reached_85_9():
    summaries = [run_summary(history(accuracies)) for accuracies in ([0.85, 0.86], [0.85, 0.858], [0.86, 0.859])]
    stats = spread(summaries)
    assert stats["best"][0] == pytest.approx(np.mean([0.86, 0.858, 0.86]))
    assert stats["last"][1] == pytest.approx(np.std([0.86, 0.858, 0.859], ddof=1))
    assert stats["reached"] == pytest.approx(2 / 3) and stats["first_epoch_published"] == 1.5


def test_the_report_of_several_runs_adds_their_spread_and_the_share_that_reached_85_9():
    runs = {"a": history([0.85, 0.86]), "b": history([0.85, 0.858])}
    text = report(runs)
    assert text.startswith(summary_table(runs))
    assert (
        text.splitlines()[-1] == "over 2 runs: best 85.90% ± 0.14%, last 85.90% ± 0.14% (mean ± std); 50% reached 85.9%"
    )
    assert report({"a": runs["a"]}) == summary_table({"a": runs["a"]})  # one run: no spread
    longer = history([0.85, 0.86, 0.87])
    longer["config"] = {**longer["config"], "epochs": 3}
    assert report({"a": runs["a"], "c": longer}).endswith("no spread: the runs differ in more than the seed (epochs)")

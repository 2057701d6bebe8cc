"""A trained run's milestones, and its saved model on the test set: confusion matrix, Grad-CAM."""

import numpy as np
import pytest
import torch

from helpers.analysis import (
    confusion_matrix,
    finished_history,
    first_epoch_at,
    grad_cam,
    milestones,
    model_input,
    on_the_image,
    per_class_accuracy,
    recorded_command,
    run_summary,
    trained_model,
    verdict,
)
from helpers.config import ACCURACY
from helpers.machinery.checkpoint import load_history
from helpers.model import Net
from helpers.receptive_field import layer_row, receptive_field_table, unit_field
from running import ROOT
from runs import REFERENCE, history


def test_summary_finds_best_last_and_first_epochs_at_thresholds():
    summary = run_summary(history([0.5, 0.851, 0.86, 0.859, 0.855]))
    assert (summary["best_acc"], summary["best_epoch"], summary["last_acc"]) == (0.86, 3, 0.855)
    assert (summary["first_epoch_85"], summary["first_epoch_published"]) == (2, 3)
    assert (summary["seconds_per_epoch"], summary["seconds_total"]) == (2.0, 10.0)
    assert summary["precision"] == "bf16"  # amp=True meant bf16 autocast


def test_threshold_never_reached_is_none_and_shown_as_such():
    assert first_epoch_at(history([0.5, 0.6])["epochs"], 0.859) is None


def test_a_milestone_counts_the_epoch_that_lands_exactly_on_it():
    # Accuracies are correct / total: 8,590 of 10,000 right is exactly the published 85.9%, and counts as reached.
    assert 8590 / 10000 == ACCURACY and 8500 / 10000 == 0.85
    s = run_summary(history([0.8499, 8500 / 10000, 0.8589, 8590 / 10000, 0.86]))
    assert (s["first_epoch_85"], s["first_epoch_published"]) == (2, 4)


def test_confusion_matrix_counts_true_by_predicted():
    labels, predictions = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(labels, predictions, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    np.testing.assert_allclose(per_class_accuracy(matrix), [0.5, 1.0, 2 / 3])


def test_grad_cam_maps_are_image_sized_finite_non_negative_and_follow_the_class(cifar):
    model = trained_model(REFERENCE)
    inputs = model_input(cifar.test_images[:8], cifar.mean, cifar.std)
    maps = grad_cam(model, inputs, cifar.test_labels[:8])
    assert maps.shape == (8, 32, 32) and np.isfinite(maps).all() and (maps >= 0).all() and maps.max() > 0
    other = grad_cam(model, inputs, (cifar.test_labels[:8] + 1) % 10)
    assert all(not np.allclose(a, b) for a, b in zip(maps, other, strict=True))


def test_grad_cam_at_the_last_conv_is_its_class_channel_over_16(cifar):
    # block4.4 feeds only the 4x4 average pool: class c's score has gradient 1/16 on channel c, 0 elsewhere.
    model = trained_model(REFERENCE)
    inputs, labels = model_input(cifar.test_images[:8], cifar.mean, cifar.std), cifar.test_labels[:8]
    captured = []
    hook = model.block4[4].register_forward_hook(lambda module, args, output: captured.append(output.detach()))
    model(inputs)
    hook.remove()
    class_channel = captured[0][torch.arange(8), torch.as_tensor(labels)]
    row = layer_row(receptive_field_table(model), "block4.4")
    expected = on_the_image(torch.relu(class_channel)[:, None] / 16, row, 32)
    np.testing.assert_allclose(grad_cam(model, inputs, labels), expected[:, 0].numpy(), atol=1e-6)
    assert grad_cam(model, inputs, labels, layer="block3.4").shape == (8, 32, 32)  # from an 8x8 layer


@pytest.mark.parametrize("layer", ["block4.4", "block3.4", "block2.8"])  # 4x4, 8x8, 16x16
def test_a_units_grad_cam_value_sits_where_its_field_is_centred(layer):
    row = layer_row(receptive_field_table(Net()), layer)
    for unit in range(row["n_out"]):
        maps = torch.zeros(1, 1, row["n_out"], row["n_out"])
        maps[0, 0, unit, unit] = 1
        placed = on_the_image(maps, row, 32)[0, 0]
        centre = sum(unit_field(row, unit)) / 2  # the receptive-field code's centre of this unit's field
        assert centre == round(centre) and placed[round(centre), round(centre)] == pytest.approx(1)
        if 0 < unit < row["n_out"] - 1:  # beyond the edge units' centres their values go on to the border
            peak = (placed > placed.max() - 1e-5).nonzero().float().mean(0)
            assert peak.tolist() == [centre, centre]


def test_a_recorded_command_reads_as_it_is_typed_today():
    assert (
        recorded_command({"command": "train.py --epochs 100 --seed 1"})
        == "python -m helpers train --epochs 100 --seed 1"
    )
    assert recorded_command({"command": "python -m helpers train --smoke"}) == "python -m helpers train --smoke"
    for kernel in (
        "ipykernel_launcher.py -f /root/.local/share/jupyter/runtime/kernel-1.json",
        "colab_kernel_launcher.py -f k.json",
    ):
        assert recorded_command({"command": kernel}) == "notebook 4 (helpers.training.fit_or_load)"


def test_the_readmes_headline_says_what_the_reference_history_holds():
    history = load_history(REFERENCE)
    s = run_summary(history)
    reached = s["first_epoch_published"]
    after = [r["test_acc"] for r in history["epochs"] if r["epoch"] >= reached]
    at_or_above = sum(accuracy >= ACCURACY for accuracy in after)
    readme = (ROOT / "README.md").read_text().replace("\n", " ")
    assert f"{s['last_acc']:.2%} after 100 epochs, 85.9% first reached at epoch {reached}" in readme
    assert f"exactly {round(history['epochs'][reached - 1]['test_acc'] * 10_000):,} of 10,000" in readme
    assert f"{at_or_above} of the {len(after)} epochs from {reached} on are at or above it" in readme


def test_notebook_5s_sentence_train_accuracy_stays_below_test_accuracy_in_every_epoch_of_the_reference_run():
    epochs = load_history(ROOT / REFERENCE)["epochs"]
    assert len(epochs) == 100 and all(r["train_acc"] < r["test_acc"] for r in epochs)


def test_notebook_5_says_whether_a_run_reproduced_the_published_result():
    assert verdict(None).startswith("No finished run of notebook 4 yet: the reference run is analysed")
    reached = history([0.80] * 77 + [0.85] * 12 + [0.859, 0.8612] + [0.86] * 9)  # 85% at 78, 85.9% at 90
    assert verdict(reached).startswith(
        "Your run reproduced the published result: 85.9% first at epoch 90 (published: 91), "
        "best 86.12% (epoch 91; published best 86.09%)."
    )
    short = history([0.80] * 99 + [0.858])
    assert verdict(short).startswith("Your run did not reproduce the published 85.9% within 100 epochs: best 85.80%")
    preview = history([0.3, 0.35, 0.38, 0.40, 0.41])
    preview["config"]["subset"] = 5000
    assert verdict(preview) == (
        "Your run is a preview (5 epoch(s) of 5,000 images), not the recipe: it is shown, not compared with the "
        "published 85.9%."
    )
    table = milestones({"reference": reached, "yours": preview}).splitlines()
    assert (
        table[2]
        == "| reference | 100 epoch(s) of 50,000 images, test device, bf16 | 78 | 90 | 86.12% (epoch 91) | 86.00% |"
    )
    assert (
        table[3].startswith("| yours (a preview) | 5 epoch(s) of 5,000 images")
        and "not reached | not reached" in table[3]
    )
    assert table[4] == "| published log | 100 epoch(s) of 50,000 images | 78 | 91 | 86.09% | |"


def test_notebook_5_finds_notebook_4s_run_only_once_it_has_finished(two_epochs, tmp_path):
    _, finished, unfinished = two_epochs["fast"]
    assert finished_history(finished) == load_history(finished)
    assert finished_history(unfinished) is None  # epoch 1 of 2
    assert finished_history(tmp_path / "nothing here") is None

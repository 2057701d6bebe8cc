"""The notebooks' exercises: each accepts the right answer, names the quantity of a known wrong one with the hint
that fixes it, and waits, without an error, while nothing is answered."""

from dataclasses import replace

import numpy as np
import pytest

from helpers import exercises
from helpers.augment import augmentations
from helpers.config import TrainConfig
from helpers.model import Net
from helpers.schedule import one_cycle


def said(capsys) -> str:
    return capsys.readouterr().out.strip()


@pytest.fixture(scope="module")
def model():
    return Net()


def test_an_exercise_waits_for_an_answer_and_refuses_a_quantity_it_does_not_ask(model, capsys):
    question = exercises.receptive_field_row(model, "block2.8")
    assert question.check(n_out=None, j_out=None, r_out=None, start=None) is None
    assert said(capsys) == "Not answered yet: fill in n_out, j_out, r_out, start, then run this cell again."
    assert question.check(n_out=16) is None and said(capsys) == "Right so far. Still to fill in: j_out, r_out, start."
    assert question.check(rout=19) is False and "Not a quantity of this exercise: rout" in said(capsys)
    question.hint()
    assert "k_eff = d*(k-1)+1" in said(capsys)


@pytest.mark.parametrize(
    "layer, right, wrong, hint",
    [
        (
            "block2.8",
            dict(n_out=16, j_out=2, r_out=19, start=0.0),
            dict(r_out=15),
            "dilation widens the kernel to d*(k-1)+1 = 5",
        ),
        ("block2.8", dict(n_out=16, j_out=2, r_out=19, start=0.0), dict(n_out=18), "dilation widens the kernel"),
        ("block2.8", dict(n_out=16, j_out=2, r_out=19, start=0.0), dict(start=-2.0), "dilation widens the kernel"),
        ("block2.12", dict(n_out=8, j_out=4, r_out=23, start=0.0), dict(j_out=2), "a stride of 2 multiplies the jump"),
        (
            "block3.0",
            dict(n_out=8, j_out=4, r_out=31, start=0.0),
            dict(r_out=25),
            "each step of the kernel moves j_in = 4",
        ),
        ("block4.5", dict(n_out=1, j_out=32, r_out=103, start=12.0), dict(start=10.0), "with k_eff = d*(k-1)+1"),
    ],
    ids=["dilated r_out", "dilated n_out", "dilated start", "stride", "jump", "pool: no known mistake"],
)
def test_a_receptive_field_row_is_checked_against_the_models_table(model, capsys, layer, right, wrong, hint):
    question = exercises.receptive_field_row(model, layer)
    assert question.answers == right  # what receptive_field_table computes from the model
    assert question.check(**right) is True and said(capsys).startswith("Correct:")
    assert question.check(**{**right, **wrong}) is False
    name, value = next(iter(wrong.items()))
    assert said(capsys).startswith(f"Not yet: {name} = {value!r} is not right. Hint: {hint}")


@pytest.mark.parametrize("depthwise, pointwise, right", [("block2.4", "block2.5", 4800), ("block3.3", "block3.4", 840)])
def test_a_separable_blocks_parameters_count_both_biases(model, capsys, depthwise, pointwise, right):
    question = exercises.separable_parameters(model, depthwise, pointwise)
    assert question.check(parameters=right) is True
    channels = model.get_submodule(depthwise).in_channels
    for wrong, hint in [
        (right - channels, "the pointwise conv has a bias too"),
        (right - 2 * channels, "each of the two"),
    ]:
        said(capsys)
        assert question.check(parameters=wrong) is False and hint in said(capsys)
    assert question.check(parameters=9 * channels**2 + channels**2 + 2 * channels) is False
    assert f"groups={channels}" in said(capsys)


def test_the_augmentation_shares_are_the_joint_chances_of_the_four_transforms(capsys):
    assert exercises.TRANSFORMS == len(augmentations((0.5, 0.5, 0.5)))  # as many as training draws
    question = exercises.augmentation_fractions()
    assert question.check(none=1 / 16, all_four=0.0625) is True
    for wrong in (0.5, 0.25):
        said(capsys)
        assert question.check(none=1 / 16, all_four=wrong) is False and "multiply" in said(capsys)


def test_the_schedule_questions_are_read_from_torchs_one_cycle(capsys):
    config = replace(TrainConfig(), epochs=2)
    schedule = one_cycle(config, steps_per_epoch=79)  # 5,000 images in batches of 64: the last one of 8
    question = exercises.schedule_questions(schedule)
    right = dict(steps_per_epoch=79, first_lr=0.017 / 25, last_lr=0.017 / 25 / 1e4)
    assert question.check(**right) is True
    for wrong, hint in [(dict(steps_per_epoch=78), "round up"), (dict(first_lr=0.017), "max_lr / div_factor"),
                        (dict(last_lr=0), "not to 0"), (dict(last_lr=0.017 / 25), "far below")]:  # fmt: skip
        said(capsys)
        assert question.check(**{**right, **wrong}) is False and hint in said(capsys)


def test_the_most_confused_pair_adds_both_directions(capsys):
    classes = ("cat", "dog", "ship")
    matrix = np.array([[80, 12, 8], [11, 85, 4], [1, 2, 97]])  # cat->dog 12 + 11 beats cat->ship 8 + 1
    question = exercises.most_confused(matrix, classes)
    assert question.check(pair=("dog", "cat")) is True  # either order
    one_way = np.array([[80, 5, 15], [11, 85, 4], [1, 9, 90]])  # cat->ship 15 alone; cat and dog 16 both ways
    question = exercises.most_confused(one_way, classes)
    assert question.check(pair=["cat", "dog"]) is True
    said(capsys)
    assert question.check(pair=("cat", "ship")) is False and "add both directions" in said(capsys)
    assert question.check(pair=("dog", "dog")) is False and "on the diagonal" in said(capsys)

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


@pytest.fixture(scope="module")
def model():
    return Net()


def test_an_exercise_waits_for_an_answer_and_refuses_a_quantity_it_does_not_ask(model, capsys):
    question = exercises.receptive_field_row(model, "block2.8")
    question.check(n_out=None, j_out=None, r_out=None, start=None)  # as a committed notebook runs it: no error
    assert (
        capsys.readouterr().out == "Not answered yet: fill in n_out, j_out, r_out, start, then run this cell again.\n"
    )
    assert question.verdict(n_out=16) == "Right so far. Still to fill in: j_out, r_out, start."
    assert question.verdict(rout=19).startswith("Not a quantity of this exercise: rout")
    question.hint()
    assert "k_eff = d*(k-1)+1" in capsys.readouterr().out


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
def test_a_receptive_field_row_is_checked_against_the_models_table(model, layer, right, wrong, hint):
    question = exercises.receptive_field_row(model, layer)
    assert question.answers == right  # what receptive_field_table computes from the model
    assert question.verdict(**right).startswith("Correct:")
    name, value = next(iter(wrong.items()))
    assert question.verdict(**{**right, **wrong}).startswith(f"Not yet: {name} = {value!r} is not right. Hint: {hint}")


@pytest.mark.parametrize("depthwise, pointwise, right", [("block2.4", "block2.5", 4800), ("block3.3", "block3.4", 840)])
def test_a_separable_blocks_parameters_count_both_biases(model, depthwise, pointwise, right):
    question = exercises.separable_parameters(model, depthwise, pointwise)
    assert question.verdict(parameters=right).startswith("Correct:")
    channels = model.get_submodule(depthwise).in_channels
    for wrong, hint in [
        (right - channels, "the pointwise conv has a bias too"),
        (right - 2 * channels, "each of the two"),
    ]:
        assert hint in question.verdict(parameters=wrong)
    assert f"groups={channels}" in question.verdict(parameters=9 * channels**2 + channels**2 + 2 * channels)


def test_the_augmentation_shares_are_the_joint_chances_of_the_four_transforms():
    assert exercises.TRANSFORMS == len(augmentations((0.5, 0.5, 0.5)))  # as many as training draws
    question = exercises.augmentation_fractions()
    assert question.verdict(none=1 / 16, all_four=0.0625).startswith("Correct:")
    for wrong in (0.5, 0.25):
        assert "multiply" in question.verdict(none=1 / 16, all_four=wrong)


def test_the_schedule_questions_are_read_from_torchs_one_cycle():
    config = replace(TrainConfig(), epochs=2)
    schedule = one_cycle(config, steps_per_epoch=79)  # 5,000 images in batches of 64: the last one of 8
    question = exercises.schedule_questions(schedule)
    right = dict(steps_per_epoch=79, first_lr=0.017 / 25, last_lr=0.017 / 25 / 1e4)
    assert question.verdict(**right).startswith("Correct:")
    for wrong, hint in [(dict(steps_per_epoch=78), "round up"), (dict(first_lr=0.017), "max_lr / div_factor"),
                        (dict(last_lr=0), "not to 0"), (dict(last_lr=0.017 / 25), "far below")]:  # fmt: skip
        assert hint in question.verdict(**{**right, **wrong})


def test_the_most_confused_pair_adds_both_directions():
    classes = ("cat", "dog", "ship")
    matrix = np.array([[80, 12, 8], [11, 85, 4], [1, 2, 97]])  # cat->dog 12 + 11 beats cat->ship 8 + 1
    question = exercises.most_confused(matrix, classes)
    assert question.verdict(pair=("dog", "cat")).startswith("Correct:")  # either order
    one_way = np.array([[80, 5, 15], [11, 85, 4], [1, 9, 90]])  # cat->ship 15 alone; cat and dog 16 both ways
    question = exercises.most_confused(one_way, classes)
    assert question.verdict(pair=["cat", "dog"]).startswith("Correct:")
    assert "add both directions" in question.verdict(pair=("cat", "ship"))
    assert "on the diagonal" in question.verdict(pair=("dog", "dog"))

"""Exercises that check themselves: the learner computes a thing first, then `check` compares it with what the
project computes from the model, the schedule or the results, at once; `hint()` and `solution()` only when asked.

An exercise is a question, its right answers by name, and the wrong answers learners are known to give, each with
the hint that fixes it. Our own small helper, not a library: Kaggle's learntools is built for Kaggle's own courses
and nbgrader for graded classes with a server; here a check is a few comparisons, and it must run wherever the
notebooks run (Colab included) with nothing more installed.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch.nn as nn

from helpers.config import AUGMENT_P
from helpers.receptive_field import layer_row, receptive_field_table

TRANSFORMS = 4  # flip, shift-scale-rotate, cutout, gray: drawn one by one, each with AUGMENT_P


@dataclass
class Exercise:
    """`answers`: {name: right value}; `mistakes`: {name: [(a known wrong value, the hint it calls for)]}."""

    question: str
    answers: dict
    hint_text: str
    solution_text: str
    mistakes: dict = field(default_factory=dict)
    tolerance: float = 1e-3  # relative, for numbers

    def check(self, **given):
        """Say whether `given` (the answers by name; None: not answered yet) is right, or which is not, with the
        hint for that mistake. It prints, and returns nothing: a notebook shows no True or False under it."""
        print(self.verdict(**given))

    def verdict(self, **given) -> str:
        """The line `check` prints."""
        unknown = sorted(set(given) - set(self.answers))
        if unknown:
            return f"Not a quantity of this exercise: {', '.join(unknown)} (it asks for {', '.join(self.answers)})."
        answered = {name: value for name, value in given.items() if value is not None}
        if not answered:
            return f"Not answered yet: fill in {', '.join(self.answers)}, then run this cell again."
        for name, value in answered.items():
            if not self._equal(value, self.answers[name]):
                hint = next((text for wrong, text in self.mistakes.get(name, []) if self._equal(value, wrong)), None)
                return f"Not yet: {name} = {value!r} is not right. Hint: {hint or self.hint_text}"
        missing = [name for name in self.answers if name not in answered]
        if missing:
            return f"Right so far. Still to fill in: {', '.join(missing)}."
        return "Correct: " + ", ".join(f"{name} = {value!r}" for name, value in self.answers.items()) + "."

    def hint(self):
        print(self.hint_text)

    def solution(self):
        print(self.solution_text)

    def _equal(self, value, right) -> bool:
        if isinstance(right, frozenset):
            return isinstance(value, (tuple, list, set, frozenset)) and frozenset(value) == right
        try:
            return math.isclose(float(value), float(right), rel_tol=self.tolerance, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False


def receptive_field_row(model: nn.Module, layer: str) -> Exercise:
    """Fill in `layer`'s row of the receptive-field table (n_out, j_out, r_out, start) from the row before it."""
    rows = receptive_field_table(model)
    row = layer_row(rows, layer)
    k, s, p, d = row["kernel"], row["stride"], row["padding"], row["dilation"]
    n_in, j_in, r_in = row["n_in"], row["j_in"], row["r_in"]
    index = rows.index(row)
    start_in = rows[index - 1]["start"] if index else 0.0
    effective = d * (k - 1) + 1
    mistakes = {"n_out": [], "j_out": [], "r_out": [], "start": []}  # each: (a known wrong value, its hint)
    if d > 1:  # the published table's error: the dilated row computed as if k were its width
        dilation_hint = f"dilation widens the kernel to d*(k-1)+1 = {effective} pixels of its input, not k = {k}"
        mistakes["n_out"].append(((n_in + 2 * p - k) // s + 1, dilation_hint))
        mistakes["r_out"].append((r_in + (k - 1) * j_in, dilation_hint))
        mistakes["start"].append((start_in + ((k - 1) / 2 - p) * j_in, dilation_hint))
    if s > 1:
        mistakes["j_out"].append((j_in, f"a stride of {s} multiplies the jump: j_out = j_in * stride"))
    if j_in > 1:
        step_hint = f"each step of the kernel moves j_in = {j_in} input pixels: r_out = r_in + (k_eff - 1) * j_in"
        mistakes["r_out"].append((r_in + effective - 1, step_hint))
    mistakes = {
        name: [(wrong, text) for wrong, text in known if wrong != row[name]] for name, known in mistakes.items()
    }
    return Exercise(
        question=(
            f"{row['label']}: kernel {k}, stride {s}, padding {p}, dilation {d}; its input has n_in = {n_in}, "
            f"j_in = {j_in}, r_in = {r_in}, start_in = {start_in}. What are n_out, j_out, r_out and start?"
        ),
        answers={name: row[name] for name in ("n_out", "j_out", "r_out", "start")},
        hint_text=(
            "with k_eff = d*(k-1)+1: n_out = floor((n_in + 2p - k_eff) / s) + 1, j_out = j_in * s, "
            "r_out = r_in + (k_eff - 1) * j_in, start = start_in + ((k_eff - 1) / 2 - p) * j_in"
        ),
        solution_text=(
            f"k_eff = {d}*({k}-1)+1 = {effective}; n_out = floor(({n_in} + 2*{p} - {effective}) / {s}) + 1 = "
            f"{row['n_out']}; j_out = {j_in}*{s} = {row['j_out']}; r_out = {r_in} + ({effective} - 1)*{j_in} = "
            f"{row['r_out']}; start = {start_in} + (({effective} - 1)/2 - {p})*{j_in} = {row['start']}"
        ),
        mistakes=mistakes,
    )


def separable_parameters(model: nn.Module, depthwise: str, pointwise: str) -> Exercise:
    """The parameters of a depthwise-separable convolution (its depthwise and pointwise convs, biases included)."""
    dw, pw = model.get_submodule(depthwise), model.get_submodule(pointwise)
    channels, k = dw.in_channels, dw.kernel_size[0]
    count = sum(parameter.numel() for conv in (dw, pw) for parameter in conv.parameters())
    full = channels * channels * k * k + channels  # an ordinary 3x3 conv of as many channels, with a bias
    return Exercise(
        question=(
            f"{depthwise} is a {k}x{k} depthwise conv of {channels} channels, {pointwise} a 1x1 pointwise conv of "
            f"{channels} to {channels} channels, both with a bias. How many parameters do the two hold together?"
        ),
        answers={"parameters": count},
        hint_text="depthwise: one k x k filter per channel, plus a bias each; pointwise: channels x channels, plus a bias each",
        solution_text=(
            f"depthwise {channels}*{k}*{k} + {channels} = {channels * k * k + channels}; pointwise "
            f"{channels}*{channels} + {channels} = {channels * channels + channels}; together {count} "
            f"(an ordinary {k}x{k} conv would hold {full})"
        ),
        mistakes={
            "parameters": [
                (count - channels, "the pointwise conv has a bias too: one per output channel"),
                (count - 2 * channels, "each of the two convs has a bias: one per output channel"),
                (
                    full + channels * channels + channels,
                    f"depthwise means groups={channels}: one {k}x{k} filter per channel",
                ),
            ]
        },
    )


def augmentation_fractions() -> Exercise:
    """The share of training images that get none of the four augmentations, and all four."""
    none, every = (1 - AUGMENT_P) ** TRANSFORMS, AUGMENT_P**TRANSFORMS
    return Exercise(
        question=(
            f"Each of the {TRANSFORMS} training augmentations is drawn on its own with p = {AUGMENT_P}. What share "
            "of the training images gets none of them, and what share gets all four?"
        ),
        answers={"none": none, "all_four": every},
        hint_text="the four are drawn independently: multiply the four chances",
        solution_text=f"none: (1 - {AUGMENT_P})^{TRANSFORMS} = {none}; all four: {AUGMENT_P}^{TRANSFORMS} = {every}",
        mistakes={
            name: [
                (
                    AUGMENT_P,
                    "that is one transform's chance; all four (or none of them) must happen together: multiply",
                ),
                (1 / TRANSFORMS, "the four are not shares of one draw: each is drawn on its own; multiply the chances"),
            ]
            for name in ("none", "all_four")
        },
    )


def schedule_questions(schedule: dict) -> Exercise:
    """Steps per epoch, and the first and last learning rates, of a one_cycle schedule (helpers.schedule)."""
    lr = schedule["lr"]
    return Exercise(
        question=(
            "For this run: how many steps (batches) make one epoch, and what are the learning rates at the first "
            "step and at the last?"
        ),
        answers={"steps_per_epoch": schedule["steps_per_epoch"], "first_lr": float(lr[0]), "last_lr": float(lr[-1])},
        hint_text=(
            "a last, smaller batch is a step too; OneCycleLR starts at max_lr / div_factor (25) and ends at that "
            "divided by final_div_factor (10,000)"
        ),
        solution_text=(
            f"steps per epoch: ceil(training images / batch size) = {schedule['steps_per_epoch']}; first: max_lr / 25 "
            f"= {lr[0]:.6g}; last: max_lr / 25 / 10,000 = {lr[-1]:.6g}, after peaking at max_lr 30% of the way"
        ),
        mistakes={
            "steps_per_epoch": [(schedule["steps_per_epoch"] - 1, "the last, smaller batch is a step too: round up")],
            "first_lr": [(float(lr.max()), "OneCycleLR starts low: at max_lr / div_factor, 25 by default")],
            "last_lr": [
                (0.0, "it anneals to the first rate / final_div_factor (10,000), not to 0"),
                (float(lr[0]), "it ends far below where it started: the first rate / final_div_factor (10,000)"),
            ],
        },
    )


def most_confused(matrix: np.ndarray, classes) -> Exercise:
    """The pair of classes the model confuses most, read from its confusion matrix (both directions added)."""
    both = matrix + matrix.T
    np.fill_diagonal(both, -1)
    i, j = np.unravel_index(np.argmax(both), both.shape)
    one_way = matrix.copy()
    np.fill_diagonal(one_way, -1)
    a, b = np.unravel_index(np.argmax(one_way), one_way.shape)
    mistakes = [(frozenset((classes[c], classes[c])), "a class on the diagonal is one the model got right")
                for c in range(len(classes))]  # fmt: skip
    if frozenset((classes[a], classes[b])) != frozenset((classes[i], classes[j])):
        mistakes.append((frozenset((classes[a], classes[b])), "add both directions: matrix[i, j] + matrix[j, i]"))
    return Exercise(
        question="Which pair of classes does the model confuse most (either taken for the other)? Give two names.",
        answers={"pair": frozenset((classes[i], classes[j]))},
        hint_text="off the diagonal, add both directions for each pair: matrix[i, j] + matrix[j, i]",
        solution_text=(
            f"{classes[i]} and {classes[j]}: {matrix[i, j]} {classes[i]} taken for {classes[j]} and {matrix[j, i]} "
            f"the other way, {both[i, j]} in all"
        ),
        mistakes={"pair": mistakes},
    )

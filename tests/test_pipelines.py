"""The fast pipeline draws from the same distributions as the albumentations one."""

import albumentations as A
import numpy as np
import pytest
import torch
from scipy import stats

from helpers.augment import augmentations, train_transform
from helpers.config import TrainConfig, mean_fill
from helpers.data import CIFAR10Data
from helpers.pipelines import (
    GRAY_WEIGHTS,
    AugmentParams,
    DeviceLoader,
    affine_warp,
    apply_augmentations,
    augment_images,
    make_loaders,
    sample_params,
)
from helpers.training import epoch_seed, settle

N = 3000
CENTRE = np.array([15.5, 15.5])


@pytest.fixture(scope="module")
def albumentations_draws(cifar):
    """The parameters albumentations applied to N training images, in AugmentParams' terms."""
    transform = train_transform(cifar.mean, cifar.std, seed=0, save_applied_params=True)
    draws = {k: [] for k in ("flip", "affine", "cutout", "gray", "angle", "scale", "shift", "corner", "size")}
    for image in cifar.train_images[:N]:
        applied = dict(transform(image=image)["applied_transforms"])
        draws["flip"].append("HorizontalFlip" in applied)
        draws["affine"].append("Affine" in applied)
        draws["cutout"].append("CoarseDropout" in applied)
        draws["gray"].append("ToGray" in applied)
        if "Affine" in applied:
            params = applied["Affine"]
            matrix = params["matrix"]
            draws["angle"].append(params["rotate"])
            draws["scale"].append(params["scale"]["x"])
            draws["shift"].append(matrix[:2, 2] - CENTRE + matrix[:2, :2] @ CENTRE)
        if "CoarseDropout" in applied:
            ((x1, y1, x2, y2),) = applied["CoarseDropout"]["holes"]
            draws["corner"].append((y1, x1))
            draws["size"].append((y2 - y1, x2 - x1))
    return {k: np.asarray(v) for k, v in draws.items()}


@pytest.fixture(scope="module")
def fast_draws():
    return sample_params(N, 32, 32, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("flag", ["flip", "affine", "cutout", "gray"])
def test_each_transform_applies_to_half_the_images(albumentations_draws, fast_draws, flag):
    four_sigma = 4 * np.sqrt(0.25 * 2 / N)
    fast, albu = getattr(fast_draws, flag).float().mean().item(), albumentations_draws[flag].mean()
    assert abs(fast - albu) < four_sigma and abs(fast - 0.5) < four_sigma


@pytest.mark.parametrize("name", ["angle", "scale"])
def test_angle_and_scale_distributions_agree(albumentations_draws, fast_draws, name):
    fast = getattr(fast_draws, name)[fast_draws.affine].numpy()
    assert stats.ks_2samp(fast, albumentations_draws[name]).pvalue > 0.001


def test_shifts_are_whole_pixels_with_the_same_frequencies(albumentations_draws, fast_draws):
    albu = albumentations_draws["shift"]
    np.testing.assert_allclose(albu, np.round(albu), atol=1e-6)
    fast = fast_draws.shift[fast_draws.affine].numpy()
    values = [-1, 0, 1]
    table = [[(column == v).sum() for v in values] for column in (albu[:, 0], albu[:, 1], fast[:, 0], fast[:, 1])]
    assert np.isin(np.round(albu), values).all() and np.isin(fast, values).all()
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_cutout_is_one_16x16_hole_anywhere_inside(albumentations_draws, fast_draws):
    assert (albumentations_draws["size"] == 16).all()
    fast = fast_draws.cutout_corner.numpy()
    albu = albumentations_draws["corner"]
    for axis in (0, 1):
        assert fast[:, axis].min() == albu[:, axis].min() == 0
        assert fast[:, axis].max() == albu[:, axis].max() == 16
        assert stats.ks_2samp(fast[:, axis], albu[:, axis]).pvalue > 0.001


def test_affine_warp_equals_albumentations_for_the_same_draw(cifar):
    affine = A.Compose([augmentations(cifar.mean)[1]], seed=3, save_applied_params=True)
    affine.transforms[0].p = 1
    for image in cifar.train_images[:20]:
        out = affine(image=image)
        params = out["applied_transforms"][0][1]
        matrix = params["matrix"]
        shift = matrix[:2, 2] - CENTRE + matrix[:2, :2] @ CENTRE
        warped = (
            affine_warp(
                torch.tensor(image).permute(2, 0, 1)[None].float(),
                torch.tensor([params["rotate"]], dtype=torch.float32),
                torch.tensor([params["scale"]["x"]], dtype=torch.float32),
                torch.tensor(shift, dtype=torch.float32)[None],
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        # albumentations rounds to uint8 (cv2 in fixed point); ours stays in float
        assert np.abs(warped - out["image"]).max() <= 1.0


def test_flip_cutout_and_gray_do_what_their_draws_say():
    images = torch.rand(2, 3, 32, 32)
    yes, no = torch.tensor([True, False]), torch.tensor([False, False])
    params = AugmentParams(
        flip=yes,
        affine=no,
        angle=torch.zeros(2),
        scale=torch.ones(2),
        shift=torch.zeros(2, 2),
        cutout=yes,
        cutout_corner=torch.tensor([[3, 5], [0, 0]]),
        gray=yes,
    )
    fill = torch.tensor([0.1, 0.2, 0.3])
    out = apply_augmentations(images, params, fill)
    torch.testing.assert_close(out[1], images[1])  # no transform drawn: unchanged
    flipped = images[0].flip(-1)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    hole_gray = (fill.view(3, 1, 1) * weights).sum(0)
    torch.testing.assert_close(out[0, :, 3:19, 5:21], hole_gray.expand(3, 16, 16))
    outside = out[0, 0, 20:, :]
    torch.testing.assert_close(outside, (flipped * weights).sum(0)[20:, :])


def test_the_fast_pipeline_turns_gray_exactly_the_images_whose_gray_was_drawn(cifar, fast_draws):
    # How often albumentations draws ToGray is checked above, from its applied parameters.
    batch = torch.tensor(cifar.train_images[:N]).permute(0, 3, 1, 2).float() / 255
    out = apply_augmentations(batch, fast_draws, torch.tensor([0.49, 0.48, 0.45]))
    gray = ((out[:, 0] - out[:, 1]).abs().amax((1, 2)) < 1e-6) & ((out[:, 1] - out[:, 2]).abs().amax((1, 2)) < 1e-6)
    already_gray = ((batch[:, 0] == batch[:, 1]) & (batch[:, 1] == batch[:, 2])).flatten(1).all(1)
    assert torch.equal(gray & ~already_gray, fast_draws.gray & ~already_gray)


def test_test_images_are_normalised_identically(small_cifar):
    run = settle(TrainConfig(batch_size=100, device="cpu", pipeline="albumentations"))
    albu_images = torch.cat([x for x, _ in make_loaders(small_cifar, run)[1]])
    fast = DeviceLoader(
        small_cifar.test_images, small_cifar.test_labels, small_cifar.mean, small_cifar.std, 100, "cpu", train=False
    )
    torch.testing.assert_close(torch.cat([x for x, _ in fast]), albu_images, atol=1e-5, rtol=0)


def test_short_training_reaches_the_same_accuracy(learning_runs):
    # The SMOKE preset, one epoch on 1,000 images: both above chance (10%), and within noise of
    # each other (seed-to-seed spread of this setting is a few points).
    accuracy = {pipeline: history["epochs"][-1]["test_acc"] for pipeline, (history, _) in learning_runs.items()}
    assert min(accuracy.values()) > 0.13  # chance is 0.10, sd 0.0095 on 1,000 test images: 3 sd above
    assert abs(accuracy["fast"] - accuracy["albumentations"]) < 0.08, accuracy


def test_augment_images_shows_the_fast_pipeline_on_uint8_images(cifar):
    images = cifar.train_images[:64]
    out = augment_images(images, cifar.mean, seed=3)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, augment_images(images, cifar.mean, seed=3))  # the seed decides
    params = sample_params(64, 32, 32, torch.Generator().manual_seed(3))
    drawn = params.flip | params.affine | params.cutout | params.gray
    changed = (out != images).reshape(64, -1).any(1)
    assert np.array_equal(changed[~drawn.numpy()], np.zeros((~drawn).sum().item(), bool))  # nothing drawn: as it was
    assert changed[drawn.numpy()].mean() > 0.9  # a drawn flip of a symmetric image may change nothing


def test_the_albumentations_batches_depend_on_the_seed_and_not_on_the_worker_count(small_cifar):
    def first_batches(seed, workers):
        run = settle(TrainConfig(batch_size=50, device="cpu", pipeline="albumentations", num_workers=workers))
        loader = make_loaders(small_cifar, run)[0]
        loader.set_seed(seed)
        batches = iter(loader)
        return torch.cat([next(batches)[0] for _ in range(4)])

    alone = first_batches(seed=5, workers=0)
    torch.testing.assert_close(first_batches(seed=5, workers=2), alone, atol=0, rtol=0)
    assert not torch.equal(first_batches(seed=6, workers=0), alone)


# The joint distribution of the four transforms, decided from what each pipeline's training loader yields, on a
# probe image whose every transform leaves its own mark: left half red, right half blue (a flip swaps them, and
# they stay apart in gray: 76 and 29), and a cutout hole the only place of the mean colour (or its gray).
PROBE = np.zeros((32, 32, 3), np.uint8)
PROBE[:, :16, 0], PROBE[:, 16:, 2] = 255, 255
COMBINATIONS = 16  # flip, affine, cutout, gray: each applied or not
JOINT_N = 2048


def gray(images: np.ndarray) -> np.ndarray:
    return np.repeat(np.rint(images.astype(float) @ GRAY_WEIGHTS)[..., None], 3, axis=-1)


def decided(images: np.ndarray, fill) -> np.ndarray:
    """(flip, affine, cutout, gray) for each augmented probe (uint8 HWC, as floats), read from the pixels alone."""
    decisions = []
    for image in images:
        grey = np.abs(np.diff(image, axis=-1)).max() <= 1
        holes = [np.abs(image - colour).max(-1) <= 1 for colour in (np.array(fill), gray(np.array([fill]))[0])]
        hole = holes[1] if grey else holes[0]
        assert hole.sum() in (0, 256), hole.sum()  # one 16x16 hole, or none
        candidates = [PROBE, PROBE[:, ::-1]]  # not flipped, flipped
        if grey:
            candidates = [gray(candidate) for candidate in candidates]
        distances = [np.abs(image - candidate)[~hole].max() for candidate in candidates]
        affine = min(distances) > 1
        if affine:  # rotated at most 45 degrees: each half still mostly its own colour
            red = image[..., 0] > 52 if grey else image[..., 0] > image[..., 2]
            flip = red[:, :16][~hole[:, :16]].mean() < red[:, 16:][~hole[:, 16:]].mean()
        else:
            flip = distances[1] < distances[0]
        decisions.append((flip, affine, hole.any(), grey))
    return np.array(decisions)


def joint_counts(decisions: np.ndarray) -> np.ndarray:
    """How often each of the 16 combinations occurred (flip is the highest bit)."""
    return np.bincount(decisions.astype(int) @ [8, 4, 2, 1], minlength=COMBINATIONS)


@pytest.fixture(scope="module")
def probe_decisions(cifar):
    """Each pipeline's training loader run over JOINT_N probes, as training runs it: {pipeline: decisions}."""
    probes = CIFAR10Data(np.repeat(PROBE[None], JOINT_N, 0), np.zeros(JOINT_N, np.int64), PROBE[None],
                         np.zeros(1, np.int64), cifar.classes, cifar.mean, cifar.std)  # fmt: skip
    mean, std = np.array(cifar.mean), np.array(cifar.std)
    decisions = {}
    for pipeline in ("albumentations", "fast"):
        loader, _ = make_loaders(probes, settle(TrainConfig(pipeline=pipeline, device="cpu", channels_last=False)))
        loader.set_seed(epoch_seed(1, 1))
        images = torch.cat([batch for batch, _ in loader]).permute(0, 2, 3, 1).numpy()
        pixels = np.rint((images * std + mean) * 255)  # what the network sees, back in uint8 steps
        decisions[pipeline] = decided(pixels, mean_fill(cifar.mean))
    return decisions


@pytest.mark.parametrize("pipeline", ["albumentations", "fast"])
def test_the_four_transforms_are_drawn_independently_all_16_combinations_equally_often(probe_decisions, pipeline):
    counts = joint_counts(probe_decisions[pipeline])
    assert counts.min() > 0, counts  # every combination occurs (the coupled seeding left 8 of 16 empty)
    assert stats.chisquare(counts).pvalue > 0.001, counts  # each with probability 1/16


def test_both_pipelines_draw_the_same_joint_distribution(probe_decisions):
    table = [joint_counts(probe_decisions[pipeline]) for pipeline in ("albumentations", "fast")]
    assert stats.chi2_contingency(table).pvalue > 0.001, table

import albumentations as A
import numpy as np

from helpers import augment  # not `from ... import test_transform`: pytest would collect it
from helpers.augment import augmentations, demo_transforms, train_transform
from helpers.config import mean_fill
from helpers.pipelines import pipeline_draws
from helpers.plots import draws_grid, show_images


def test_training_pipeline_is_the_published_recipe_in_order(cifar):
    transform = train_transform(cifar.mean, cifar.std)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == ["HorizontalFlip", "Affine", "CoarseDropout", "ToGray", "Normalize", "ToTensorV2"]
    assert all(t.p == 0.5 for t in transform.transforms[:4])


def test_same_seed_same_augmentations(cifar):
    images = cifar.train_images[:20]
    first, second = (train_transform(cifar.mean, cifar.std, seed=7) for _ in range(2))
    for image in images:
        np.testing.assert_array_equal(first(image=image)["image"].numpy(), second(image=image)["image"].numpy())


def test_test_transform_only_normalises(cifar):
    image = cifar.test_images[0]
    tensor = augment.test_transform(cifar.mean, cifar.std)(image=image)["image"].numpy()
    expected = ((image / 255.0 - cifar.mean) / cifar.std).transpose(2, 0, 1)
    np.testing.assert_allclose(tensor, expected, atol=1e-5)


def test_cutout_fills_one_16x16_hole_with_the_mean_not_black(cifar):
    fill = mean_fill(cifar.mean)
    assert fill == (125, 123, 114)
    cutout = A.Compose([augmentations(cifar.mean)[2]], seed=0, save_applied_params=True)
    cutout.transforms[0].p = 1
    out = cutout(image=np.zeros((32, 32, 3), np.uint8))
    ((x1, y1, x2, y2),) = out["applied_transforms"][0][1]["holes"]
    assert (x2 - x1, y2 - y1) == (16, 16)
    assert (out["image"] == fill).all(axis=-1).sum() == 256


def test_demo_shows_each_training_transform_applied_and_labels_the_one_training_skips(cifar):
    transforms = demo_transforms(cifar.mean)
    training = [type(t).__name__ for t in train_transform(cifar.mean, cifar.std).transforms[:4]]
    singles = [t for t in transforms.values() if t is not None and not isinstance(t, A.Compose)]
    assert [type(t).__name__ for t in singles[:4]] == training
    for title, transform in transforms.items():
        if type(transform).__name__ not in training and transform is not None and not isinstance(transform, A.Compose):
            assert "not in training" in title
    images = cifar.train_images[:20]
    figure = show_images({title: transforms[title] for title in list(transforms)[:5]}, images)
    shown = np.asarray([np.asarray(ax.images[0].get_array()) for ax in figure.axes]).reshape(len(images), 5, 32, 32, 3)
    for column in range(1, 5):  # every image changed by every single transform: each applies every time
        assert all((shown[row, column] != shown[row, 0]).any() for row in range(len(images))), list(transforms)[column]


def test_both_pipelines_are_drawn_side_by_side_on_the_same_images(cifar):
    images = cifar.train_images[:4]
    draws = pipeline_draws(images, cifar.mean, draws=2)
    assert {name: [d.shape for d in ds] for name, ds in draws.items()} == {
        "albumentations": [images.shape] * 2, "fast": [images.shape] * 2}  # fmt: skip
    assert not np.array_equal(draws["fast"][0], draws["fast"][1])  # each draw its own
    figure = draws_grid(images, draws)
    assert [ax.get_title() for ax in figure.axes[:5]] == [
        "original",
        "albumentations",
        "albumentations",
        "fast",
        "fast",
    ]
    np.testing.assert_array_equal(figure.axes[5].images[0].get_array(), images[1])  # the second row starts with image 1
    np.testing.assert_array_equal(figure.axes[8].images[0].get_array(), draws["fast"][0][1])

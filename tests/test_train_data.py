"""Data loaders: fixed splits, preparation, caching and clear errors offline."""

import numpy as np
import pytest

from train.data import (
    DataSpec,
    area_resize,
    balanced_subset,
    load_dataset,
)
from train.errors import DataUnavailableError, UsageError

SMALL = DataSpec(n_train=30, n_test=20, image_size=7)


def test_mnist5k_shapes_and_balance(tmp_path):
    dataset = load_dataset(SMALL, cache_dir=tmp_path)

    assert dataset.train.x.shape == (30, 1, 7, 7)
    assert dataset.train.x.dtype == np.float32
    assert dataset.train.y.shape == (30, 10)
    assert set(dataset.tests) == {"test", "test_rotated"}
    assert np.bincount(dataset.train.labels, minlength=10).tolist() == [3] * 10
    assert np.array_equal(dataset.train.y.argmax(axis=1), dataset.train.labels)


def test_mnist5k_split_is_fixed(tmp_path):
    first = load_dataset(SMALL)
    second = load_dataset(SMALL, cache_dir=tmp_path)

    assert np.array_equal(first.train.x, second.train.x)
    assert np.array_equal(first.tests["test"].labels, second.tests["test"].labels)


def test_mnist5k_standardised_on_train():
    dataset = load_dataset(SMALL)

    assert abs(float(dataset.train.x.mean())) < 1e-5
    assert abs(float(dataset.train.x.std()) - 1.0) < 1e-4


def test_rotated_test_is_rotated_copy():
    dataset = load_dataset(SMALL)
    upright = dataset.tests["test"].x
    rotated = dataset.tests["test_rotated"].x

    for image, turned in zip(upright, rotated):
        matches = [
            k
            for k in (1, 2, 3)
            if np.array_equal(np.rot90(image, k, axes=(1, 2)), turned)
        ]
        assert matches, (
            "every rotated test image is a non-zero quarter turn of its digit"
        )
    assert np.array_equal(
        dataset.tests["test"].labels, dataset.tests["test_rotated"].labels
    )


def test_cache_file_written_and_reused(tmp_path):
    load_dataset(SMALL, cache_dir=tmp_path)
    files = list(tmp_path.glob("mnist5k-*.npz"))
    assert len(files) == 1

    cached = load_dataset(SMALL, cache_dir=tmp_path)
    assert cached.train.x.shape == (30, 1, 7, 7)
    assert list(tmp_path.glob("mnist5k-*.npz")) == files


def test_area_resize_block_mean():
    images = np.random.RandomState(0).rand(2, 1, 28, 28)
    resized = area_resize(images, 7)
    expected = images.reshape(2, 1, 7, 4, 7, 4).mean(axis=(3, 5))

    np.testing.assert_allclose(resized, expected, rtol=1e-12)


def test_area_resize_keeps_mean_for_fractional_scale():
    images = np.random.RandomState(1).rand(3, 2, 28, 28)
    resized = area_resize(images, 8)

    assert resized.shape == (3, 2, 8, 8)
    np.testing.assert_allclose(
        resized.mean(axis=(2, 3)), images.mean(axis=(2, 3)), rtol=1e-12
    )


def test_balanced_subset_rejects_too_many():
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(UsageError, match="only 4"):
        balanced_subset(labels, 5, 2, seed=0)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_tfds_offline_fails_with_instructions(tmp_path, name):
    spec = DataSpec(name=name, data_path=str(tmp_path / "tfds"))
    with pytest.raises(DataUnavailableError, match="download_and_prepare") as error:
        load_dataset(spec)
    assert name in str(error.value)


def test_unknown_dataset_named():
    with pytest.raises(UsageError, match="'imagenet'"):
        load_dataset(DataSpec(name="imagenet"))


def test_missing_nct_folder_named(tmp_path):
    missing = tmp_path / "NCT-CRC-HE-100K"
    with pytest.raises(DataUnavailableError, match="NCT-CRC-HE-100K"):
        load_dataset(DataSpec(name="nct_crc", data_path=str(missing)))


def test_nct_folder_loader(tmp_path):
    from PIL import Image

    rng = np.random.RandomState(0)
    for tissue in ("ADI", "LYM", "TUM"):
        folder = tmp_path / tissue
        folder.mkdir()
        for i in range(5):
            pixels = rng.randint(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{tissue}-{i}.png")

    spec = DataSpec(
        name="nct_crc", data_path=str(tmp_path), n_train=9, n_test=3, image_size=8
    )
    dataset = load_dataset(spec)

    assert dataset.num_classes == 3
    assert dataset.train.x.shape == (9, 3, 8, 8)
    assert np.bincount(dataset.tests["test"].labels).tolist() == [1, 1, 1]


def _write_pathmnist(path, images_dtype=np.uint8, nan=False):
    rng = np.random.RandomState(0)
    train = rng.randint(0, 256, size=(40, 28, 28, 3)).astype(images_dtype)
    if nan:
        train[3, 4, 5, 0] = np.nan
    np.savez(
        path,
        train_images=train,
        train_labels=(np.arange(40) % 9).reshape(-1, 1),
        test_images=rng.randint(0, 256, size=(18, 28, 28, 3)).astype(images_dtype),
        test_labels=(np.arange(18) % 9).reshape(-1, 1),
    )


def test_pathmnist_loader(tmp_path):
    path = tmp_path / "pathmnist.npz"
    _write_pathmnist(path)
    spec = DataSpec(
        name="pathmnist", data_path=str(path), n_train=18, n_test=9, image_size=7
    )
    dataset = load_dataset(spec)

    assert dataset.num_classes == 9
    assert dataset.train.x.shape == (18, 3, 7, 7)
    assert np.bincount(dataset.train.labels).tolist() == [2] * 9


def test_nan_in_data_named(tmp_path):
    path = tmp_path / "pathmnist.npz"
    _write_pathmnist(path, images_dtype=np.float64, nan=True)
    spec = DataSpec(name="pathmnist", data_path=str(path), n_train=40, n_test=9)
    with pytest.raises(UsageError, match="1 NaN"):
        load_dataset(spec)


@pytest.mark.parametrize(
    "labels, named",
    [
        (np.arange(39) % 9, "39 labels for 40 images"),
        (np.arange(40) % 9 - 1, "negative label -1"),
        ((np.arange(40) % 9) + 0.5, "must be integers"),
    ],
)
def test_pathmnist_bad_labels_named(tmp_path, labels, named):
    path = tmp_path / "pathmnist.npz"
    _write_pathmnist(path)
    arrays = dict(np.load(path))
    arrays["train_labels"] = labels
    np.savez(path, **arrays)
    spec = DataSpec(name="pathmnist", data_path=str(path), n_train=18, n_test=9)

    with pytest.raises(UsageError, match=named) as error:
        load_dataset(spec)
    assert str(path) in str(error.value)
    assert "`train_labels`" in str(error.value)

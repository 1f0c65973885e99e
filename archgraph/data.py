"""Datasets: small embedded defaults, loaders for files the user already has, seeded splits.

Every task is a :class:`TaskData`: a train and a test :class:`~torch.utils.data.Dataset`
yielding ``(x, y)`` pairs (``x`` a float tensor, channels first; ``y`` a long class
index), the per-sample ``input_shape`` and ``num_classes``. Nothing here downloads:
``digits``, ``wine`` and ``breast_cancer`` ship inside scikit-learn, ``mnist1d`` is
generated offline (and cached), ``cifar10`` reads the batch files from a folder you give.

Examples
--------
>>> from archgraph.data import load, fade_split
>>> task = load("digits")
>>> task
TaskData('digits', train=1437, test=360, input_shape=(1, 8, 8), num_classes=10)
>>> x, y = task.train[0]
>>> x.shape, x.dtype, y.dtype
(torch.Size([1, 8, 8]), torch.float32, torch.int64)
>>> [len(part) for part in fade_split(task.train, seed=0)]
[239, 239, 959]
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset, random_split

from .errors import ArchGraphError, DataNotFoundError, SettingError, ShapeError

__all__ = ["DATASETS", "TaskData", "fade_split", "from_dataset", "load", "train_val_split"]

PathLike = str | os.PathLike

#: Seed of the fixed stratified 80/20 train/test partition of the scikit-learn sets.
SPLIT_SEED = 0

# The usual CIFAR-10 channel statistics (DARTS, ``cnn/utils.py``: CIFAR_MEAN, CIFAR_STD).
_CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
_CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_CIFAR_HOWTO = (
    "download the CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz), "
    "unpack it and pass root=<the folder holding cifar-10-batches-py>; archgraph never downloads"
)
_MNIST1D_DEFAULT_SAMPLES = 5000  # mnist1d's get_dataset_args(): 4000 train + 1000 test


@dataclass(frozen=True, repr=False)
class TaskData:
    """A classification task: train and test datasets and what a model needs to know.

    Parameters
    ----------
    train, test:
        Map-style datasets yielding ``(x, y)``: ``x`` a float tensor of ``input_shape``,
        ``y`` a long class index in ``0 .. num_classes - 1``. ``test`` is ``None`` for a
        :func:`from_dataset` task built without one.
    input_shape:
        Shape of one sample, channels first: ``(1, 8, 8)`` for digits, ``(13,)`` for wine.
    num_classes:
        Number of classes.
    name:
        Name of the task, as given to :func:`load`.
    """

    train: Dataset
    test: Dataset | None
    input_shape: tuple[int, ...]
    num_classes: int
    name: str

    def __repr__(self) -> str:
        test = None if self.test is None else len(self.test)
        return (
            f"TaskData({self.name!r}, train={len(self.train)}, test={test}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def load(name: str, *, root: PathLike | None = None, num_samples: int | None = None) -> TaskData:
    """Load a named task; nothing is downloaded.

    ========================  ===============  =====  ==========================================
    name                      input_shape      train  source
    ========================  ===============  =====  ==========================================
    ``digits``                ``(1, 8, 8)``    1437   scikit-learn ``load_digits``, pixels / 16
    ``mnist1d``               ``(1, 40)``      4000   ``mnist1d``'s generator, offline (``num_samples``)
    ``cifar10``               ``(3, 32, 32)``  50000  the CIFAR-10 python batch files in ``root``
    ``wine``                  ``(13,)``        142    scikit-learn ``load_wine``
    ``breast_cancer``         ``(30,)``        455    scikit-learn ``load_breast_cancer``
    ========================  ===============  =====  ==========================================

    The scikit-learn sets use a fixed stratified 80/20 train/test partition
    (``train_test_split(..., test_size=0.2, stratify=y, random_state=SPLIT_SEED)``);
    ``wine`` and ``breast_cancer`` are standardised with the train split's mean and std.
    ``mnist1d`` keeps the package's own 80/20 split of ``num_samples`` samples (default 5000, the
    package's default arguments). ``cifar10`` is normalised per
    channel with the usual mean/std (as DARTS).

    Parameters
    ----------
    name:
        One of :data:`DATASETS` (``-`` may stand for ``_``, case does not matter).
    root:
        For ``cifar10``: the folder holding the batch files (``data_batch_1`` ..
        ``data_batch_5``, ``test_batch``), directly or inside ``cifar-10-batches-py/``.
        For ``mnist1d``: the cache folder for the generated arrays, by default
        ``$ARCHGRAPH_DATA`` or else ``~/.cache/archgraph``. Ignored by the embedded sets.
    num_samples:
        For ``mnist1d``: how many samples the generator makes (train and test together, split
        80/20; a multiple of 10, one tenth per class); ``name`` may carry it instead, as
        ``"mnist1d:10000"`` (so a command line's ``--dataset`` can). Each set of generator
        arguments and ``mnist1d`` version is cached in a file of its own. Other tasks refuse it.

    Raises
    ------
    ArchGraphError
        For an unknown name (the message lists the known ones), or missing CIFAR-10 files
        (the message says where they were looked for and where to get them).
    ShapeError
        For a CIFAR-10 file that is not a python-version batch.

    Examples
    --------
    >>> load("wine")
    TaskData('wine', train=142, test=36, input_shape=(13,), num_classes=3)
    >>> load("imagenet")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    archgraph.errors.ArchGraphError: unknown dataset 'imagenet'; known: digits, mnist1d, cifar10, wine, breast_cancer; ...
    """
    key, colon, size = name.lower().replace("-", "_").partition(":")
    if colon:
        if num_samples is not None or not size.isdigit():
            raise ArchGraphError(f"dataset {name!r}: give the size once, as 'mnist1d:N' with a whole number N "
                                 "or as num_samples=N")
        num_samples = int(size)
    if key not in _LOADERS:
        raise ArchGraphError(
            f"unknown dataset {name!r}; known: {', '.join(DATASETS)}; "
            "wrap your own Dataset with archgraph.data.from_dataset(...)"
        )
    if num_samples is None:
        return _LOADERS[key](root)
    if key != "mnist1d":
        raise ArchGraphError(f"num_samples sets the size of the generated mnist1d only; {name!r} has a fixed size")
    return _mnist1d(root, num_samples)


def from_dataset(
    dataset: Dataset,
    *,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    test: Dataset | None = None,
    name: str = "custom",
) -> TaskData:
    """Wrap a user's map-style dataset of ``(x, y)`` pairs as a :class:`TaskData`.

    ``input_shape`` is read from the first sample. ``num_classes`` is ``max label + 1``
    over ``dataset`` and ``test`` when not given; this reads every label (from a
    ``targets`` attribute or a :class:`~torch.utils.data.TensorDataset` when there is one,
    else sample by sample), so pass it for a large dataset.

    Parameters
    ----------
    dataset:
        The training data; ``dataset[i]`` must be a pair ``(x tensor, y class index)``.
    num_classes:
        Taken as given, or inferred from the labels.
    input_shape:
        Checked against the first sample when given.
    test:
        Optional held-out data with samples of the same shape; without it, split
        ``dataset`` with :func:`train_val_split` or :func:`fade_split`.
    name:
        Name of the task.

    Raises
    ------
    ShapeError
        For an empty dataset, samples that are not ``(x tensor, y)`` pairs, a test set or
        ``input_shape`` that disagrees with the first sample, or negative labels.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> ds = TensorDataset(torch.zeros(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
    >>> from_dataset(ds, name="toy")
    TaskData('toy', train=6, test=None, input_shape=(3,), num_classes=3)
    """
    shape = _sample_shape(dataset, "dataset")
    if input_shape is not None and tuple(input_shape) != shape:
        raise ShapeError(
            f"input_shape={tuple(input_shape)} was given, but dataset[0] has x of shape {shape}; "
            "drop input_shape or fix the data"
        )
    if test is not None and (test_shape := _sample_shape(test, "test")) != shape:
        raise ShapeError(
            f"test samples have shape {test_shape}, training samples {shape}; give a test set of the same shape"
        )
    if num_classes is None:
        parts = {"dataset": dataset, "test": test}
        num_classes = 1 + max(_max_label(part, what) for what, part in parts.items() if part is not None)
    return TaskData(train=dataset, test=test, input_shape=shape, num_classes=int(num_classes), name=name)


def fade_split(dataset: Dataset, seed: int | torch.Generator = 0) -> tuple[Subset, Subset, Subset]:
    """Split into ``(test, arch_train, weight_train)`` in proportions 1 : 1 : 4.

    FaDE (Neumeier, Stier & Granitzer, "Efficient NAS with FaDE on Hierarchical Spaces",
    IDA 2024, arXiv:2404.16218, §3) splits the data "1-1-4 (test / architecture training /
    weight training)": weights are trained on the largest part, architecture parameters
    on a separate one, and the test part is never seen by the search. ``test`` and
    ``arch_train`` get ``n // 6`` samples each and ``weight_train`` the rest; the parts
    are disjoint and cover all samples.

    Parameters
    ----------
    dataset:
        A map-style dataset with ``len``.
    seed:
        An int, or a :class:`torch.Generator` to draw the permutation from.

    Examples
    --------
    >>> import torch
    >>> test, arch, weight = fade_split(torch.arange(60), seed=1)
    >>> len(test), len(arch), len(weight)
    (10, 10, 40)
    >>> sorted([*test.indices, *arch.indices, *weight.indices]) == list(range(60))
    True
    """
    n = len(dataset)
    part = n // 6
    if part == 0:
        raise ShapeError(f"fade_split needs at least 6 samples for its 1:1:4 parts, got {n}")
    test, arch_train, weight_train = random_split(dataset, [part, part, n - 2 * part], generator=_generator(seed))
    return test, arch_train, weight_train


def train_val_split(
    dataset: Dataset, val_fraction: float = 0.2, seed: int | torch.Generator = 0
) -> tuple[Subset, Subset]:
    """Split into disjoint ``(train, val)`` parts; ``val`` holds ``round(n * val_fraction)`` samples.

    Examples
    --------
    >>> import torch
    >>> train, val = train_val_split(torch.arange(10), val_fraction=0.3, seed=0)
    >>> len(train), len(val)
    (7, 3)
    """
    if not 0.0 < val_fraction < 1.0:
        raise SettingError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    n = len(dataset)
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise ShapeError(
            f"{n} samples cannot be split with val_fraction={val_fraction}: one part would be empty; use more data"
        )
    train, val = random_split(dataset, [n - n_val, n_val], generator=_generator(seed))
    return train, val


def _generator(seed: int | torch.Generator) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))


def _stratified_task(name: str, x: np.ndarray, y: np.ndarray, *, standardise: bool) -> TaskData:
    """The fixed stratified 80/20 partition of a scikit-learn set (see :func:`load`)."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=SPLIT_SEED)
    if standardise:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return TaskData(_tensors(x_train, y_train), _tensors(x_test, y_test), tuple(x.shape[1:]), int(y.max()) + 1, name)


def _digits(root: PathLike | None) -> TaskData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _stratified_task("digits", bunch.images[:, None] / 16.0, bunch.target, standardise=False)


def _table(name: str, root: PathLike | None) -> TaskData:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    return _stratified_task(name, bunch.data, bunch.target, standardise=True)


def _cache_dir(root: PathLike | None) -> Path:
    folder = Path(root or os.environ.get("ARCHGRAPH_DATA") or Path.home() / ".cache" / "archgraph").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _mnist1d(root: PathLike | None, num_samples: int = _MNIST1D_DEFAULT_SAMPLES) -> TaskData:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 10 or num_samples % 10:
        raise ArchGraphError(f"mnist1d's num_samples must be a whole multiple of 10 (one tenth per class), "
                             f"at least 10; got {num_samples!r}, e.g. {_MNIST1D_DEFAULT_SAMPLES}")
    args = _mnist1d_args(num_samples)
    path = _cache_dir(root) / _mnist1d_file(args)
    if not path.is_file():
        _save_atomically(path, _generate_mnist1d(args))
    with np.load(path) as arrays:
        train = _tensors(arrays["x"][:, None], arrays["y"])
        test = _tensors(arrays["x_test"][:, None], arrays["y_test"])
    return TaskData(train, test, tuple(train.tensors[0].shape[1:]), 10, "mnist1d")


def _mnist1d_args(num_samples: int):
    """The package's default generator arguments with ``num_samples`` set."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    args.num_samples = num_samples
    return args


def _mnist1d_file(args) -> str:
    """The cache file of one set of generator arguments and package version: the arguments that
    shape the data (not the download address) and the version, hashed.

    >>> _mnist1d_file(_mnist1d_args(5000)).startswith("mnist1d-5000-")
    True
    """
    from importlib.metadata import version

    shaping = {k: v for k, v in sorted(vars(args).items()) if k != "url"}
    digest = hashlib.sha256(repr((version("mnist1d"), shaping)).encode()).hexdigest()[:12]
    return f"mnist1d-{args.num_samples}-{digest}.npz"


def _generate_mnist1d(args) -> dict[str, np.ndarray]:
    """MNIST-1D made by the package's generator from ``args`` (about 9 s for 5000 samples)."""
    from mnist1d.data import make_dataset

    # make_dataset reseeds numpy's and Python's global RNGs; give the caller theirs back
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {key: np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test")}


def _save_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as .npz so that a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _NormalisedImages(Dataset):
    """uint8 images kept as such (a quarter of the float memory), normalised per sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: Sequence[float], std: Sequence[float]):
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.images[i].float() / 255.0 - self.mean) / self.std, self.labels[i]


def _cifar10(root: PathLike | None) -> TaskData:
    if root is None:
        raise DataNotFoundError(f"cifar10 reads the batch files from a folder you give: {_CIFAR_HOWTO}")
    root = Path(root).expanduser()
    folder = root / _CIFAR_FOLDER if (root / _CIFAR_FOLDER).is_dir() else root
    missing = [name for name in _CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise DataNotFoundError(f"cifar10: {', '.join(missing)} not found in {folder}; {_CIFAR_HOWTO}")
    parts = [_read_cifar_batch(folder / name) for name in _CIFAR_FILES]
    train_images, train_labels = (np.concatenate(arrays) for arrays in zip(*parts[:-1]))
    train = _NormalisedImages(train_images, train_labels, _CIFAR_MEAN, _CIFAR_STD)
    test = _NormalisedImages(*parts[-1], _CIFAR_MEAN, _CIFAR_STD)
    return TaskData(train, test, (3, 32, 32), 10, "cifar10")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one python-version batch."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if not (isinstance(batch, dict) and b"data" in batch and b"labels" in batch):
        raise ShapeError(f"{path} is not a CIFAR-10 python batch (a dict with b'data' and b'labels'); {_CIFAR_HOWTO}")
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or len(images) != len(labels):
        raise ShapeError(
            f"{path}: expected b'data' of shape (N, 3072) and N labels, "
            f"got {images.shape} and {len(labels)}; {_CIFAR_HOWTO}"
        )
    return images.reshape(-1, 3, 32, 32), labels


def _sample_shape(dataset: Dataset, what: str) -> tuple[int, ...]:
    try:
        n = len(dataset)
    except TypeError:
        raise ShapeError(f"{what} must be a map-style Dataset with __len__, got {type(dataset).__name__}") from None
    if n == 0:
        raise ShapeError(f"{what} is empty; give at least one (x, y) sample")
    sample = dataset[0]
    if not (isinstance(sample, (tuple, list)) and len(sample) == 2 and isinstance(sample[0], torch.Tensor)):
        raise ShapeError(
            f"{what}[0] must be a pair (x tensor, y label), got {type(sample).__name__}; "
            "make __getitem__ return (x, y)"
        )
    return tuple(sample[0].shape)


def _max_label(dataset: Dataset, what: str) -> int:
    if isinstance(dataset, TensorDataset):
        labels = dataset.tensors[-1]
    elif hasattr(dataset, "targets"):
        labels = torch.as_tensor(dataset.targets)
    else:
        labels = torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])
    if int(labels.min()) < 0:
        raise ShapeError(
            f"{what} has a negative label {int(labels.min())}; labels are class indices 0 .. num_classes - 1"
        )
    return int(labels.max())


_LOADERS: dict[str, Callable[[PathLike | None], TaskData]] = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    "cifar10": _cifar10,
    "wine": partial(_table, "wine"),
    "breast_cancer": partial(_table, "breast_cancer"),
}

#: Names :func:`load` knows.
DATASETS: tuple[str, ...] = tuple(_LOADERS)

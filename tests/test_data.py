import pickle
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import mnist1d.data
from archgraph.data import DATASETS, TaskData, fade_split, from_dataset, load, train_val_split
from archgraph.errors import ArchGraphError, DataNotFoundError, ShapeError

CIFAR_MEAN = torch.tensor([0.49139968, 0.48215827, 0.44653124]).view(3, 1, 1)
CIFAR_STD = torch.tensor([0.24703233, 0.24348505, 0.26158768]).view(3, 1, 1)


# --- embedded scikit-learn sets --------------------------------------------------------


def test_digits_shapes_scale_and_fixed_stratified_split():
    task = load("digits")
    assert (len(task.train), len(task.test), task.input_shape, task.num_classes) == (1437, 360, (1, 8, 8), 10)
    x, y = task.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() == 0 and x.max() == 1
    test_share = torch.bincount(task.test.tensors[1]) / len(task.test)
    overall_share = torch.bincount(torch.cat([y, task.test.tensors[1]])) / 1797
    assert torch.allclose(test_share, overall_share, atol=0.005)  # stratified
    again = load("digits")
    assert torch.equal(again.train.tensors[0], x) and torch.equal(again.test.tensors[1], task.test.tensors[1])


@pytest.mark.parametrize(("name", "shape", "classes", "n"), [("wine", (13,), 3, 178), ("breast_cancer", (30,), 2, 569)])
def test_tabular_sets_are_standardised_with_train_statistics(name, shape, classes, n):
    task = load(name)
    assert (task.input_shape, task.num_classes, len(task.train) + len(task.test)) == (shape, classes, n)
    x = task.train.tensors[0].double()
    assert torch.allclose(x.mean(0), torch.zeros(shape, dtype=torch.double), atol=1e-6)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(shape, dtype=torch.double), atol=1e-6)
    assert not torch.allclose(task.test.tensors[0].double().mean(0), torch.zeros(shape, dtype=torch.double), atol=1e-6)


def test_names_are_forgiving_about_case_and_dashes():
    assert load("Breast-Cancer").name == "breast_cancer"


def test_unknown_dataset_lists_the_known_names():
    with pytest.raises(ArchGraphError, match="unknown dataset 'imagenet'") as info:
        load("imagenet")
    assert all(name in str(info.value) for name in DATASETS)


# --- mnist1d -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mnist1d_cache(tmp_path_factory):
    """One real generation per session (about 9 s) into a cache folder."""
    folder = tmp_path_factory.mktemp("mnist1d-cache")
    numpy_state, python_state = np.random.get_state(), random.getstate()
    task = load("mnist1d", root=folder)
    rng_untouched = np.array_equal(np.random.get_state()[1], numpy_state[1]) and random.getstate() == python_state
    return folder, task, rng_untouched


def test_mnist1d_is_generated_offline_and_cached(mnist1d_cache):
    folder, task, rng_untouched = mnist1d_cache
    assert (len(task.train), len(task.test), task.input_shape, task.num_classes) == (4000, 1000, (1, 40), 10)
    assert [p.name[:13] for p in folder.iterdir()] == ["mnist1d-5000-"]
    assert rng_untouched, "make_dataset reseeds the global RNGs; load must restore them"


def test_mnist1d_cache_is_reused(mnist1d_cache, monkeypatch):
    folder, task, _ = mnist1d_cache

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_run)
    again = load("mnist1d", root=folder)
    assert torch.equal(again.train.tensors[0], task.train.tensors[0])
    assert torch.equal(again.test.tensors[1], task.test.tensors[1])


def _fake_mnist1d(calls):
    def make_dataset(args=None):
        calls.append(args)
        rng = np.random.default_rng(0)
        n_train = int(args.num_samples * args.train_split)
        x, x_test = rng.normal(size=(n_train, 40)), rng.normal(size=(args.num_samples - n_train, 40))
        return {"x": x, "y": np.arange(n_train) % 10, "x_test": x_test, "y_test": np.arange(len(x_test)) % 10}

    return make_dataset


def test_mnist1d_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_mnist1d(calls))
    monkeypatch.setenv("ARCHGRAPH_DATA", str(tmp_path / "cache"))
    first, second = load("mnist1d", num_samples=10), load("mnist1d", num_samples=10)
    assert len(calls) == 1
    assert [p.name[:11] for p in (tmp_path / "cache").iterdir()] == ["mnist1d-10-"]
    assert first.train.tensors[0].shape == (8, 1, 40) and torch.equal(first.train.tensors[0], second.train.tensors[0])


def test_mnist1d_size_is_the_generators_and_each_size_is_cached_apart(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_mnist1d(calls))
    small, large = load("mnist1d", root=tmp_path, num_samples=20), load("mnist1d", root=tmp_path, num_samples=50)
    assert (len(small.train), len(small.test), len(large.train), len(large.test)) == (16, 4, 40, 10)
    assert [args.num_samples for args in calls] == [20, 50]
    assert all(vars(args)["seed"] == 42 for args in calls), "the package's other default arguments are kept"
    assert len(list(tmp_path.iterdir())) == 2
    load("mnist1d", root=tmp_path, num_samples=20)
    assert len(calls) == 2, "the first size's file is reused"


def test_mnist1d_cache_is_keyed_by_the_package_version(tmp_path, monkeypatch):
    import importlib.metadata

    calls = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_mnist1d(calls))
    load("mnist1d", root=tmp_path, num_samples=10)
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "99.0" if name == "mnist1d" else real_version(name))
    load("mnist1d", root=tmp_path, num_samples=10)
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("bad", [0, 15, -10, 2.5, "100", True])
def test_mnist1d_refuses_a_size_that_is_not_a_multiple_of_ten(tmp_path, bad):
    with pytest.raises(ArchGraphError, match="multiple of 10"):
        load("mnist1d", root=tmp_path, num_samples=bad)


def test_num_samples_is_for_mnist1d_only():
    with pytest.raises(ArchGraphError, match="mnist1d only"):
        load("digits", num_samples=100)
    with pytest.raises(ArchGraphError, match="mnist1d only"):
        load("digits:100")


def test_the_name_may_carry_the_size(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_mnist1d(calls))
    task = load("MNIST-1D:30".replace("-", ""), root=tmp_path)
    assert len(task.train) + len(task.test) == 30 and calls[0].num_samples == 30
    for bad in ("mnist1d:", "mnist1d:1e4", "mnist1d:-10"):
        with pytest.raises(ArchGraphError, match="mnist1d:N"):
            load(bad, root=tmp_path)
    with pytest.raises(ArchGraphError, match="give the size once"):
        load("mnist1d:30", root=tmp_path, num_samples=30)


def test_mnist1d_failed_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist1d.data, "make_dataset", _fake_mnist1d([]))

    def savez_then_crash(file, **arrays):
        file.write(b"half an npz")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        load("mnist1d", root=tmp_path, num_samples=10)
    assert list(tmp_path.iterdir()) == []


# --- cifar10 -----------------------------------------------------------------------------


def _write_cifar(folder, sizes=(4, 4, 4, 4, 4, 3)):
    """Batches in the python-version format: pickled dicts of uint8 N x 3072 data and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    batches = {}
    for name, n in zip(names, sizes):
        batch = {b"batch_label": name.encode(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
        batches[name] = batch
    return batches


@pytest.mark.parametrize("inside", ["cifar-10-batches-py", "."])
def test_cifar10_reads_normalised_batches(tmp_path, inside):
    batches = _write_cifar(tmp_path / inside)
    task = load("cifar10", root=tmp_path)
    assert (len(task.train), len(task.test), task.input_shape, task.num_classes) == (20, 3, (3, 32, 32), 10)
    x, y = task.train[5]  # second image of data_batch_2
    raw = torch.from_numpy(batches["data_batch_2"][b"data"][1]).view(3, 32, 32)
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y.dtype == torch.long
    assert torch.allclose(x, (raw / 255.0 - CIFAR_MEAN) / CIFAR_STD)
    assert int(y) == batches["data_batch_2"][b"labels"][1]
    assert [int(task.test[i][1]) for i in range(3)] == batches["test_batch"][b"labels"]


def test_cifar10_without_root_says_where_to_get_it():
    with pytest.raises(DataNotFoundError, match=r"cifar-10-python\.tar\.gz") as info:
        load("cifar10")
    assert "root=" in str(info.value) and "never downloads" in str(info.value)


def test_cifar10_names_the_missing_files_and_the_folder(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataNotFoundError, match="test_batch not found in") as info:
        load("cifar10", root=tmp_path)
    assert str(tmp_path) in str(info.value) and "cifar-10-python.tar.gz" in str(info.value)


def test_cifar10_rejects_a_file_of_another_format(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ShapeError, match=r"data_batch_3: expected b'data' of shape \(N, 3072\)"):
        load("cifar10", root=tmp_path)


# --- from_dataset ------------------------------------------------------------------------


class Pairs(Dataset):
    def __init__(self, n, shape=(2, 5)):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full(self.shape, float(i)), i % 4


def test_from_dataset_infers_shape_and_classes():
    task = from_dataset(Pairs(9), test=Pairs(3), name="pairs")
    assert isinstance(task, TaskData)
    assert (task.input_shape, task.num_classes, task.name, len(task.test)) == ((2, 5), 4, "pairs", 3)
    assert from_dataset(Pairs(9), num_classes=7).num_classes == 7
    tensors = TensorDataset(torch.zeros(5, 3), torch.tensor([0, 5, 1, 1, 2]))
    assert from_dataset(tensors).num_classes == 6


def test_from_dataset_reads_a_targets_attribute():
    ds = Pairs(4)
    ds.targets = [0, 0, 8, 1]
    assert from_dataset(ds).num_classes == 9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": Pairs(0)}, "dataset is empty"),
        ({"dataset": [(1, 2)]}, r"dataset\[0\] must be a pair \(x tensor, y label\)"),
        ({"dataset": Pairs(4), "test": Pairs(2, shape=(3,))}, r"test samples have shape \(3,\), training .* \(2, 5\)"),
        ({"dataset": Pairs(4), "input_shape": (10,)}, r"input_shape=\(10,\) was given, but"),
        ({"dataset": TensorDataset(torch.zeros(2, 1), torch.tensor([0, -1]))}, "negative label -1"),
    ],
)
def test_from_dataset_errors(kwargs, message):
    with pytest.raises(ShapeError, match=message):
        from_dataset(**kwargs)


# --- splits ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "sizes"), [(60, (10, 10, 40)), (1437, (239, 239, 959)), (6, (1, 1, 4))])
def test_fade_split_is_1_1_4_disjoint_and_covering(n, sizes):
    parts = fade_split(torch.arange(n), seed=3)
    assert tuple(len(p) for p in parts) == sizes
    indices = [i for p in parts for i in p.indices]
    assert sorted(indices) == list(range(n))


def test_fade_split_is_seeded():
    def split(seed):
        return [list(p.indices) for p in fade_split(torch.arange(30), seed)]

    assert split(0) == split(0) != split(1)
    assert split(torch.Generator().manual_seed(5)) == split(5)


def test_fade_split_needs_six_samples():
    with pytest.raises(ShapeError, match="at least 6 samples"):
        fade_split(torch.arange(5), seed=0)


def test_train_val_split_sizes_disjoint_and_seeded():
    train, val = train_val_split(torch.arange(50), val_fraction=0.2, seed=4)
    assert (len(train), len(val)) == (40, 10)
    assert sorted([*train.indices, *val.indices]) == list(range(50))
    assert list(train_val_split(torch.arange(50), seed=4)[1].indices) == list(val.indices)
    assert list(train_val_split(torch.arange(50), seed=5)[1].indices) != list(val.indices)


@pytest.mark.parametrize(("n", "fraction", "error"), [(10, 0.0, ValueError), (10, 1.5, ValueError), (2, 0.1, ShapeError)])
def test_train_val_split_errors(n, fraction, error):
    with pytest.raises(error):
        train_val_split(torch.arange(n), val_fraction=fraction)

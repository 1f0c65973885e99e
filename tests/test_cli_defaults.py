"""`archgraph train` and `archgraph search` take the task's training defaults and the space's
parameters fitted to the input where no flag gives them; a flag or --param always wins."""

import json
from pathlib import Path

import pytest
import torch

from archgraph.cli import main
from archgraph.store import SQLiteStore
from archgraph.train import TASK_DEFAULTS, task_defaults

ROOT = Path(__file__).resolve().parents[1]
FADE_ARCH, MLP_ARCH = (str(ROOT / "examples" / name) for name in ("fade_arch.json", "mlp_arch.json"))


def train(tmp_path, capsys, *flags):
    out = tmp_path / "run"
    assert main(["train", *flags, "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("1 epochs"))
    return header, json.loads((out / "metrics.json").read_text())["params"], torch.load(out / "model.pt")


@pytest.mark.parametrize("flags, header, kernel", [
    ((), "1 epochs, batch 32, lr 0.001, pool None, kernel_size 5", 5),    # digits 8×8: unpooled, the paper's 5×5
    (("--param", "kernel_size=3", "--batch-size", "64", "--lr", "0.01"),
     "1 epochs, batch 64, lr 0.01, pool None, kernel_size 3", 3),
    (("--param", "pool='max'"), "1 epochs, batch 32, lr 0.001, kernel_size 3, pool max", 3),  # maps 8, 4, 2, 1
])
def test_train_fits_the_fade_space_to_digits_under_the_flags(tmp_path, capsys, flags, header, kernel):
    printed, params, state = train(tmp_path, capsys, "--space", "fade", "--arch", FADE_ARCH, "--dataset", "digits",
                                   *flags)
    assert printed == header
    assert (params["kernel_size"], params["pool"]) == (kernel, "max" if "pool='max'" in flags else None)
    kernels = {tuple(w.shape[2:]) for name, w in state.items() if name.endswith("weight") and w.dim() == 4}
    assert kernels == {(kernel, kernel)}


def test_train_takes_the_tasks_training_defaults(tmp_path, capsys):
    printed, params, _ = train(tmp_path, capsys, "--space", "mlp", "--arch", MLP_ARCH, "--dataset", "wine")
    assert printed == "1 epochs, batch 32, lr 0.001" and params == {}   # the mlp space fits nothing


def test_a_new_search_records_the_defaults_it_took(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "--space", "mlp", "--strategy", "predictor", "--dataset", "breast_cancer", "--trials", "1",
                 "--out", str(out), "--no-progress"]) == 0
    with SQLiteStore(out / "store.sqlite", read_only=True) as store:
        config = store.config()
    assert (config["epochs"], config["training"], config["space_params"]) == (8, {"batch_size": 32, "lr": 1e-3}, {})
    out = tmp_path / "fade"
    assert main(["search", "--dataset", "digits", "--trials", "1", "--epochs", "1", "--batch-size", "256",
                 "--param", "kernel_size=3", "--out", str(out), "--no-progress"]) == 0
    with SQLiteStore(out / "store.sqlite", read_only=True) as store:
        config = store.config()
    assert config["training"] == {"batch_size": 256, "lr": 1e-3}
    assert config["space_params"] == {"pool": None, "kernel_size": 3}
    assert config["resolved_space"]["params"]["pool"] is None


def test_task_defaults_fall_back_to_the_papers_settings():
    assert task_defaults("MNIST1D:10000") == TASK_DEFAULTS["mnist1d"]
    assert task_defaults("my_data") == {"epochs": 10, "search_epochs": 3, "batch_size": 128, "lr": 1e-3}

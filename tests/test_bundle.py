"""Model bundles: a run folder rebuilds each trial's trained model (load_model), and ships it (export_model)."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

import archgraph
from archgraph import data, spaces
from archgraph.bundle import BUNDLE_VERSION, build, load_bundle, load_model, resolved_params
from archgraph.errors import ArchGraphError
from archgraph.export import export_model
from archgraph.graph import ArchGraph
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.store import STORE_FILE, SQLiteStore
from archgraph.train import evaluate
from archgraph.trial import Result, TrainArchitecture, Trial

PARAMS = {"channels": 2, "kernel_size": 3, "pool": "max", "weights_per_cell": None}
HYPER = TrainHyperArchitecture(rows=1, width=1, tau=10.0, shared=True, cell_dependent=False, estimator="all")


def inputs(n=5):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def checkpoint(run, trial):
    return torch.load(run / "checkpoints" / f"trial-{trial}.pt", weights_only=True)


def test_every_checkpoint_holds_a_bundle_that_needs_nothing_else(tiny_run):
    with SQLiteStore(tiny_run / STORE_FILE, read_only=True) as store:
        trials = store.trials()
    for trial in trials:
        bundle = checkpoint(tiny_run, trial.id)["bundle"]
        assert {k: bundle[k] for k in ("format", "version", "space", "embodiment", "params", "input_shape",
                                       "num_classes", "dataset", "archgraph")} == {
            "format": "archgraph-model", "version": BUNDLE_VERSION, "space": "fade", "embodiment": "fade",
            "params": PARAMS, "input_shape": [1, 8, 8], "num_classes": 10, "dataset": "digits",
            "archgraph": archgraph.__version__}
        assert [ArchGraph.from_dict(c) for c in bundle["arch"]] == list(trial.arch)


def test_best_arch_json_names_the_space_parameters(tiny_run):
    text = json.loads((tiny_run / "best_arch.json").read_text())
    assert text["space"] == "fade" and text["params"] == PARAMS
    assert resolved_params(spaces.load("fade"), {"channels": 2, "kernel_size": 3}) == PARAMS


def test_load_model_gives_the_logits_of_the_best_trials_checkpoint(tiny_run):
    best = json.loads((tiny_run / "best.json").read_text())
    model = load_model(tiny_run)
    assert not model.training
    state = checkpoint(tiny_run, best["trial"])
    cells = [ArchGraph.from_dict(c) for c in state["bundle"]["arch"]]
    reference = spaces.load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10, channels=2, kernel_size=3)
    reference.load_state_dict(state["model"])
    x = inputs()
    with torch.no_grad():
        assert torch.equal(model(x), reference.eval()(x))
    test = evaluate(model, data.load("digits").test, batch_size=256)
    assert test["accuracy"] == best["test_accuracy"]  # the trained model the search measured


def test_load_model_of_a_named_trial_and_lazily_from_the_package(tiny_run):
    assert archgraph.load_model is load_model and "load_model" in archgraph.__all__
    model, bundle = load_bundle(tiny_run, 2)
    assert bundle["trial"] == 2
    weights, stored = model.state_dict(), checkpoint(tiny_run, 2)["model"]
    assert weights.keys() == stored.keys() and all(torch.equal(weights[k], stored[k]) for k in weights)


def make_store(run_dir):
    """A run with a failed, a pruned, a running and a hyper trial, and no checkpoint at all."""
    arch = ArchGraph([(0, 1)])
    with SQLiteStore(run_dir / STORE_FILE) as store:
        for i in range(4):
            store.record_ask(Trial(id=i, arch=arch, budget=3, seed=i, task=HYPER if i == 3 else TrainArchitecture()))
        store.record_tell(Result.failure(0, "RuntimeError: out of memory"))
        store.record_tell(Result(1, {"val_accuracy": 0.5, "epochs": 1}, state="pruned"))
        store.record_tell(Result(3, {"hyper_train_accuracy": 0.5}, checkpoint="checkpoints/trial-3.pt"))
    return run_dir


@pytest.mark.parametrize(("trial", "expected"), [
    (None, "has no completed trial with a validation accuracy yet; wait for one, or name a trial"),
    (0, r"trial 0 of .* failed \(RuntimeError: out of memory\); name a completed trial, or leave the trial out"),
    (1, r"trial 1 of .* was pruned \(stopped early, no checkpoint\)"),
    (2, r"trial 2 of .* is still training \(or was interrupted\)"),
    (3, "trial 3 trained no single model \\(its task is 'hyper'\\); name an architecture trial"),
    (9, "has no trial 9; its trials are 0 to 3"),
])
def test_a_trial_that_cannot_be_loaded_is_refused_saying_why(tmp_path, trial, expected):
    with pytest.raises(ArchGraphError, match=expected):
        load_model(make_store(tmp_path), trial)


def test_a_folder_without_a_run_or_a_checkpoint_without_a_bundle_is_refused(tiny_run, tmp_path):
    with pytest.raises(ArchGraphError, match="holds no search run"):
        load_model(tmp_path)
    run = shutil.copytree(tiny_run, tmp_path / "old")
    state = checkpoint(run, 0)
    del state["bundle"]
    torch.save(state, run / "checkpoints" / "trial-0.pt")
    with pytest.raises(ArchGraphError, match="holds weights but no model bundle"):
        load_model(run, 0)


def test_a_bundle_of_a_newer_version_or_another_format_is_refused(tiny_run):
    bundle = checkpoint(tiny_run, 0)["bundle"]
    with pytest.raises(ArchGraphError, match=f"version {BUNDLE_VERSION + 1}, this archgraph reads up to "
                                             f"{BUNDLE_VERSION}; upgrade archgraph"):
        build({**bundle, "version": BUNDLE_VERSION + 1})
    with pytest.raises(ArchGraphError, match="not a model bundle"):
        build({"format": "onnx"})


# ---------------------------------------------------------------- export


def test_torchscript_export_runs_on_torch_alone_and_equals_the_module(tiny_run, tmp_path):
    done = export_model(tiny_run, tmp_path / "model.pt", "torchscript", trial=1)
    assert (done.trial, done.runtime, done.input_shape) == (1, "torch.jit", (1, 8, 8))
    assert done.max_difference <= 1e-5
    x = inputs(7)
    torch.save(x, tmp_path / "x.pt")
    probe = ("import sys, torch\nsys.modules['archgraph'] = None  # no archgraph: torch alone runs the file\n"
             f"model = torch.jit.load({str(tmp_path / 'model.pt')!r})\n"
             f"torch.save(model(torch.load({str(tmp_path / 'x.pt')!r})), {str(tmp_path / 'y.pt')!r})")
    subprocess.run([sys.executable, "-W", "ignore", "-c", probe], check=True)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), load_model(tiny_run, 1)(x), rtol=0, atol=1e-5)


def test_onnx_export_checked_by_onnxruntime_takes_any_batch(tiny_run, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is optional (pip install onnxruntime)")
    done = export_model(tiny_run, tmp_path / "model.onnx", "onnx")
    assert done.runtime == "onnxruntime" and done.max_difference <= 1e-5
    assert done.trial == json.loads((tiny_run / "best.json").read_text())["trial"]
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = inputs(7)
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), load_model(tiny_run)(x), rtol=0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary or external data file


def test_onnx_export_without_onnxruntime_is_checked_by_the_onnx_reference_evaluator(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    done = export_model(tiny_run, tmp_path / "model.onnx", "onnx", trial=0)
    assert done.runtime == "onnx.reference" and done.max_difference <= 1e-5


def test_an_export_that_differs_from_the_module_writes_nothing(tiny_run, tmp_path):
    with pytest.raises(ArchGraphError, match=r"outputs differ from the module's by up to .*nothing was written"):
        export_model(tiny_run, tmp_path / "model.pt", "torchscript", tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArchGraphError, match="unknown export format 'tflite'; known: onnx, torchscript"):
        export_model(tiny_run, tmp_path / "model.tflite", "tflite")


def test_onnx_export_without_its_packages_says_what_to_install(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ArchGraphError, match=r'ONNX export needs onnx and onnxscript; install them with: '
                                             r'pip install "archgraph\[export\]"'):
        export_model(tiny_run, tmp_path / "model.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []

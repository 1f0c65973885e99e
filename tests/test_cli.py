import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archgraph import SpaceError, spaces
from archgraph.cli import main

ROOT = Path(__file__).resolve().parents[1]
FADE_ARCH = str(ROOT / "examples" / "fade_arch.json")


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--space", "fade", "--arch", FADE_ARCH, "--dataset", "digits", "--epochs", "2",
                 "--param", "channels=2", "--param", "kernel_size=3", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "1797" not in printed  # splits, not the whole set, are reported
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]] == [0, 1]
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert metrics["params"]["channels"] == 2 and metrics["params"]["kernel_size"] == 3
    cells, space = spaces.load_architecture(out / "arch.json")
    assert metrics["params"]["pool"] is None  # fitted to 8×8 digits
    model = spaces.load(space).compile(cells, input_shape=(1, 8, 8), num_classes=10, **metrics["params"])
    model.load_state_dict(torch.load(out / "model.pt"))
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())


def test_darts_searches_retrains_and_keeps_the_run(tmp_path, capsys):
    out = tmp_path / "darts"
    code = main(["darts", "--space", "s5", "--method", "darts", "--epochs", "2", "--C", "4", "--layers", "3",
                 "--retrain-epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert " normal: 0→2 " in printed and "λ_max of ∇²_α L_valid at the end" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]] == [0, 1] and metrics["eigenvalue"] > 0
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in printed
    cells, space = spaces.load_architecture(out / "arch.json")
    assert space == "s5" and [cell.num_edges for cell in cells] == [2, 2]


def test_darts_refuses_a_space_that_is_not_a_darts_space(tmp_path, capsys):
    assert main(["darts", "--space", "fade", "--out", str(tmp_path / "x")]) == 2
    assert "space 'fade' is not a DARTS space; use s1..s5, darts or nb201" in capsys.readouterr().err


def test_darts_searches_the_nas_bench_201_supernet(tmp_path, capsys):
    from archgraph.formats import from_nb201_string

    out = tmp_path / "nb201"
    code = main(["darts", "--space", "nb201", "--method", "gdas", "--epochs", "1", "--C", "4", "--layers", "1",
                 "--retrain-epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    cells, space = spaces.load_architecture(out / "arch.json")
    assert space == "nb201" and len(cells) == 1 and cells[0].num_edges == 6
    string = next(line for line in printed.splitlines() if line.startswith("NAS-Bench-201 string: ")).split(": ")[1]
    assert from_nb201_string(string).is_identical(cells[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["space"] == "nb201" and [row["epoch"] for row in metrics["history"]] == [0]
    assert metrics["eigenvalue"] is not None and 0.0 <= metrics["test_accuracy"] <= 1.0


def test_darts_refuses_methods_that_need_the_darts_cell_on_nb201(tmp_path, capsys):
    assert main(["darts", "--space", "nb201", "--method", "fair", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "method 'fair' needs the DARTS cell and does not run on the NAS-Bench-201 supernet; choose one of darts, " \
           "es, ada, rdarts, drnas, gdas" in capsys.readouterr().err


def test_nosh_search_then_a_predictor_fitted_to_it_ranks_a_pool(tmp_path, capsys):
    run = tmp_path / "nosh"
    assert main(["search", "--space", "mlp", "--strategy", "nosh", "--dataset", "breast_cancer", "--epochs", "2",
                 "--trials", "8", "--out", str(run), "--no-progress"]) == 0
    model = tmp_path / "predictor.pt"
    assert main(["predict", "--fit", str(run), "--model", str(model), "--epochs", "20"]) == 0
    assert "fitted to 8 trials" in capsys.readouterr().out
    layer = lambda op: {"num_nodes": 1, "edges": [], "node_ops": {"0": op}}  # noqa: E731
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"space": "mlp", "architectures": [[layer("dense(8, relu)")],
                                                                  [layer("dense(512, tanh)")]]}))
    assert main(["predict", "--pool", str(pool), "--model", str(model)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "2 architectures of space mlp, best predicted first:" and len(printed) == 4
    assert main(["predict", "--model", str(model)]) == 2
    assert "give either --fit RUN_DIR" in capsys.readouterr().err


def test_show_summarises_counts_parameters_and_draws(tmp_path, capsys):
    picture = tmp_path / "arch.png"
    assert main(["show", FADE_ARCH, "--picture", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "4 cell(s) of space fade" in printed and "cell3: 5 vertices, 5 edges" in printed
    cells, _ = spaces.load_architecture(FADE_ARCH)
    n = sum(p.numel() for p in spaces.load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10).parameters())
    assert f"{n:,} parameters" in printed
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _written_back(printed: str) -> str:
    return next(line for line in printed.splitlines() if "written back: " in line).split("written back: ", 1)[1]


def test_show_reads_a_genotype_writes_it_back_and_counts_the_cifar_network(capsys):
    from archgraph.embody.darts import DARTS_V2, NASNET, build_darts, genotype_to_graphs
    from archgraph.formats import format_genotype, parse_genotype

    assert main(["show", "--genotype", "NASNet"]) == 0
    printed = capsys.readouterr().out
    assert "reduce: 8 vertices, 13 edges" in printed
    assert "3,830,950 parameters" in printed  # the reference NetworkCIFAR's (see tests/test_embody_darts.py)
    back = genotype_to_graphs(parse_genotype(_written_back(printed)))
    assert all(a.is_identical(b) for a, b in zip(back, genotype_to_graphs(NASNET)))

    log_line = "genotype = " + format_genotype(DARTS_V2).replace("[2, 3, 4, 5]", "range(2, 6)")
    assert main(["show", "--genotype", log_line, "--param", "C=8"]) == 0
    printed = capsys.readouterr().out
    n = sum(p.numel() for p in build_darts(genotype_to_graphs(DARTS_V2), input_shape=(3, 32, 32), num_classes=10,
                                           C=8).parameters())
    assert f"C=8, layers=20, auxiliary=False, drop_path_prob=0.0): {n:,} parameters" in printed
    assert parse_genotype(_written_back(printed)).normal_concat == [2, 3, 4, 5]


def test_show_reads_nas_bench_strings_and_writes_them_back(capsys):
    from archgraph.formats import from_nb201_string

    text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    assert main(["show", "--nb201", text]) == 0
    printed = capsys.readouterr().out
    assert _written_back(printed) == text
    net = spaces.load("nb201").compile([from_nb201_string(text)], input_shape=(3, 32, 32), num_classes=10)
    n = sum(p.numel() for p in net.parameters())
    assert f"(C=16, N=5): {n:,} parameters" in printed
    assert main(["show", "--nb101", "[[0, 1, 1], [0, 0, 1], [0, 0, 0]]", "['input', 'maxpool3x3', 'output']"]) == 0
    printed = capsys.readouterr().out
    assert "ops ['max_pool_3x3']" in printed
    assert _written_back(printed) == "matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]], ops=['input', 'maxpool3x3', 'output']"


@pytest.mark.parametrize("argv, expected", [
    (["show"], "archgraph show takes one architecture: a file ARCH, or --genotype, --nb201 or --nb101"),
    (["show", FADE_ARCH, "--nb201", "|x~0|"], "takes one architecture"),
    (["show", "--genotype", "DARTS_V3"], "--genotype takes a Genotype(...) as DARTS logs print it, or the name of a "
                                         "published one (DARTS_V1, DARTS_V2, NASNET, AMOEBANET, ENAS, PNAS); got 'DARTS_V3'"),
    (["show", "--genotype", "Genotype(normal=[('sep_conv_3x3', 0)"], "cannot read the genotype"),
    (["show", "--nb201", "|nor_conv_3x3~0|"], "a NAS-Bench-201 string has 3 '+'-separated groups"),
    (["show", "--nb101", "[[0, 1], [0, 0]", "['input', 'output']"], "--nb101 takes the matrix and the op list as "
                                                                    "Python lists"),
    (["show", "--nb101", "[[0, 1], [0, 0]]", "['input', 'conv']"], "'input' first and 'output' last"),
])
def test_show_refuses_bad_notations_in_one_line(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("archgraph: error: ")


def test_spaces_lists_the_shipped_spaces(capsys):
    assert main(["spaces"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"fade", "darts", "nb201", "mlp"} <= set(names)


def write(tmp_path, cells, space="fade"):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"space": space, "cells": cells}))
    return str(path)


@pytest.mark.parametrize("cells, space, dataset, expected", [
    ([{"num_nodes": 3, "edges": [[0, 1], [1, 2], [2, 0]]}] * 4, "fade", "digits", "closes a cycle 0→1→2→0"),
    ([{"num_nodes": 2, "edges": [[0, 1, "conv_9x9"]]}] * 4, "fade", "digits", "unknown op 'conv_9x9'; known ops: "),
    (None, "darts", "wine", "the darts space takes images (C, H, W) or signals (C, L), got shape (13,)"),
    ([{"num_nodes": 2, "edges": [[0, 1]]}] * 3, "fade", "digits", "space 'fade' takes 4 ArchGraph cells"),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, monkeypatch, cells, space, dataset, expected):
    monkeypatch.setenv("ARCHGRAPH_DATA", str(tmp_path))
    arch = str(ROOT / "examples" / "darts_v2.json") if cells is None else write(tmp_path, cells, space)
    code = main(["train", "--space", space, "--arch", arch, "--dataset", dataset, "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and err.startswith("archgraph: error: ")


def test_param_needs_key_and_value(capsys):
    assert main(["show", FADE_ARCH, "--param", "channels"]) == 2
    assert "--param takes KEY=VALUE" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "archgraph.cli", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--space" in out and "--arch" in out and "--dataset" in out


def test_version_and_help_answer_without_importing_torch():
    probe = ("import sys\nfrom archgraph.cli import main\n"
             "for argv in (['--version'], ['--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
             "print('loaded:', *sorted({m.partition('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    import archgraph

    assert out.startswith(f"archgraph {archgraph.__version__}\nusage: archgraph")
    assert out.rstrip().endswith("loaded:")


# ---------------------------------------------------------------- failed and pruned trials

SEARCH_TINY = ["search", "--strategy", "random", "--strategy-param", "draws=1", "--param", "channels=2",
               "--param", "kernel_size=3", "--batch-size", "256", "--epochs", "1", "--no-progress"]


def fail_trials(monkeypatch, failing):
    """Make the trials ``failing`` picks raise, the others train as usual."""
    from archgraph.evaluate import TrialEvaluator

    train = TrialEvaluator.__call__

    def flaky(self, trial, report=None):
        if failing(trial):
            raise RuntimeError(f"CUDA out of memory in trial {trial.id}\nTried to allocate 2.00 GiB")
        return train(self, trial, report=report)

    monkeypatch.setattr(TrialEvaluator, "__call__", flaky)


def test_search_lists_failed_trials_and_retries_them_on_resume(tmp_path, capsys, monkeypatch):
    run = str(tmp_path / "run")
    with monkeypatch.context() as patch:
        fail_trials(patch, lambda trial: trial.id % 3 == 1)
        assert main([*SEARCH_TINY, "--trials", "3", "--out", run]) == 0
    out = capsys.readouterr().out
    assert "3 trials told" in out
    assert f"1 trials failed; their errors and tracebacks are in store.sqlite; to train them again: archgraph search " \
           f"--resume {run} --retry-failed\n     1 RuntimeError: CUDA out of memory in trial 1\n" in out
    assert main(["search", "--resume", run, "--retry-failed", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 trials told" in out and "trials failed" not in out and "CUDA" not in out


def test_search_stops_after_max_failures_in_a_row_with_one_line(tmp_path, capsys, monkeypatch):
    fail_trials(monkeypatch, lambda trial: True)
    assert main([*SEARCH_TINY, "--trials", "10", "--max-failures", "2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "archgraph: error: the search stopped after 2 trials failed in a row, the last (trial 1) with RuntimeError: "
        "CUDA out of memory in trial 1; their errors and tracebacks are in ")
    assert f"`archgraph search --resume {tmp_path / 'run'} --retry-failed`, or allow more with --max-failures\n" in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--retry-failed"], "--retry-failed trains the failed trials of a run again; use it with --resume RUN_DIR"),
    (["--max-failures", "-1"], "--max-failures is a number of trials (0: never stop), got -1"),
    (["--pruner", "median", "--pruner-param", "patience=2"], "pruner 'median' takes no such setting"),
])
def test_failure_and_pruner_flags_refuse_bad_values_in_one_line(tmp_path, capsys, argv, expected):
    assert main([*SEARCH_TINY, *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_resume_refuses_flags_that_would_change_the_run_and_names_them(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    before = (run / "store.sqlite").read_bytes()
    argv = ["search", "--resume", str(run), "--space", "mlp", "--epochs", "5", "--param", "channels=3",
            "--device", "cpu", "--evaluator", "process", "--trials", "3", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"archgraph: error: --resume continues {run} with its recorded settings, which --space, "
                   "--epochs, --param would change; leave them out (a resumed run takes --trials, --max-epochs, "
                   "--seconds, --evaluator, --workers, --ray-address, --device, --log, --max-failures, "
                   "--retry-failed, --no-progress), or start a new run with --out\n")
    assert (run / "store.sqlite").read_bytes() == before
    assert main(["search", "--resume", str(run), "--trials", "3", "--max-failures", "1", "--no-progress"]) == 0


def test_resume_refuses_a_device_that_cannot_be_used_here_before_it_starts(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    before = (run / "status.json").read_bytes()
    assert main(["search", "--resume", str(run), "--device", "nonsense", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archgraph: error: --device nonsense cannot be used here (torch: Expected one of cpu, cuda")
    assert err.count("\n") == 1 and (run / "status.json").read_bytes() == before


def test_search_with_the_median_pruner_records_pruned_trials(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*SEARCH_TINY, "--trials", "5", "--epochs", "2", "--pruner", "median", "--pruner-param",
                 "warmup_epochs=0", "--pruner-param", "min_trials=1", "--out", str(run)]) == 0
    from archgraph.store import STORE_FILE, SQLiteStore
    from archgraph.trial import TrialState

    with SQLiteStore(run / STORE_FILE) as store:
        pruned = sum(state is TrialState.PRUNED for state in store.states().values())
        assert store.config()["pruner"] == "median" and store.config()["pruner_params"] == {
            "warmup_epochs": 0, "min_trials": 1}
    assert pruned >= 1 and f"{pruned} trials pruned (stopped early by the pruner)" in capsys.readouterr().out


def test_ranks_counts_distinct_architectures_and_lists_each_once(tmp_path, capsys):
    from archgraph import ArchGraph
    from archgraph.oneshot.hyper_trial import HyperSummary, save_hyper

    one, chain, fork = ArchGraph([], num_nodes=1), ArchGraph([(0, 1)]), ArchGraph([(0, 1), (0, 2)])
    pool = [[one, one, chain], [fork, chain, fork]]            # 3 × 3 = 9 paths, 2 × 2 = 4 architectures
    probabilities = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.25, 0.35]])
    path = save_hyper(tmp_path / "trial-0.json", HyperSummary("fade", pool, probabilities, [], {}))
    assert main(["ranks", str(path), "--top", "9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "9 paths, 4 distinct architectures (distinct cells per row: [2, 2])" in lines[0]
    listed = [line.split()[1:3] for line in lines[2:] if line.split()[0].isdigit()]
    # each architecture under its best path: (one, fork) 0.5·0.4, (one, chain) 0.5·0.25, (chain, fork) 0.2·0.4,
    # (chain, chain) 0.2·0.25; the paths (1, ·) and (·, 2) repeat architectures listed before them
    assert listed == [["0.2", "0,0"], ["0.125", "0,1"], ["0.08", "2,0"], ["0.05", "2,1"]]


# ---------------------------------------------------------------- results, tracking, bundles


def test_runs_list_prints_a_line_per_run_and_runs_export_writes_csv_or_json(tiny_run, tmp_path, capsys):
    assert main(["runs", "list", str(tiny_run.parent)]) == 0
    best = json.loads((tiny_run / "best.json").read_text())
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "strategy", "space", "trials", "best", "state"]
    assert line.split() == ["run", "random", "fade", "3/3", f"{best['val_accuracy']:.4f}", "(trial", f"{best['trial']})",
                            "finished"]
    assert main(["runs", "export", str(tiny_run), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(row["trial"]) for row in rows] == [0, 1, 2]
    assert float(rows[best["trial"]]["val_accuracy"]) == best["val_accuracy"]
    assert main(["runs", "export", str(tiny_run), "--format", "json", "--out", str(tmp_path / "run.json")]) == 0
    assert capsys.readouterr().out == f"3 trials of {tiny_run} written to {tmp_path / 'run.json'}\n"
    exported = json.loads((tmp_path / "run.json").read_text())
    assert exported["config"]["strategy"] == "random" and len(exported["trials"][0]["curve"]) == 1
    assert main(["runs", "list", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"no run folders under {tmp_path} (a run folder holds store.sqlite)\n"


def test_export_writes_a_model_checked_against_the_module(tiny_run, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["export", str(tiny_run), "--format", "torchscript", "--out", str(out), "--trial", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"trial 2 of {tiny_run} written to {out} (torchscript, input N×1×8×8); run by "
                              "torch.jit, its outputs equal the module's to ") and printed.count("\n") == 1
    assert out.is_file()


@pytest.mark.parametrize(("argv", "expected"), [
    (["runs", "list", "nowhere"], "nowhere is not a folder; give a folder holding run folders"),
    (["runs", "export", ".", "--format", "csv"], ". holds no search run (store.sqlite is missing); give a run folder"),
    (["export", ".", "--format", "onnx", "--out", "m.onnx"], ". holds no search run"),
])
def test_results_commands_refuse_what_is_not_a_run_in_one_line(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_trial_that_does_not_exist_is_one_line(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--trial", "9"]) == 2
    assert capsys.readouterr().err == f"archgraph: error: {tiny_run} has no trial 9; its trials are 0 to 2\n"


def test_log_tensorboard_without_tensorboard_is_one_line_before_the_run_folder_is_made(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert main([*SEARCH_TINY, "--log", "tensorboard", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "archgraph[tensorboard]"' in err
    assert not (tmp_path / "run").exists()


def test_a_search_with_output_redirected_to_a_file_logs_one_line_per_trial(tmp_path):
    """As a job on a cluster: stdout and stderr go to a file, so tqdm hides its bar and each trial gets
    a line; --log csv writes the metrics of every epoch and trial too."""
    run, log = tmp_path / "run", tmp_path / "job.log"
    argv = [a for a in SEARCH_TINY if a != "--no-progress"]
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "archgraph.cli", *argv, "--trials", "4", "--epochs", "2", "--log", "csv",
                        "--out", str(run)], stdout=out, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    lines = [line for line in text.splitlines() if " trial " in line and " complete (" in line]
    assert [line.split(" trial ")[1].split(" complete ")[0] for line in lines] == ["0", "1", "2", "3"]
    assert all(f"complete ({i + 1}/4) in " in line and "val_accuracy" in line for i, line in enumerate(lines))
    assert "\r" not in text and "it/s" not in text and "trial/s" not in text  # no progress bar
    epochs = list(csv.DictReader((run / "logs" / "epochs.csv").open()))
    assert [(row["trial"], row["epoch"]) for row in epochs] == [(str(t), str(e)) for t in range(4) for e in range(2)]
    assert len(list(csv.DictReader((run / "logs" / "trials.csv").open()))) == 4


@pytest.mark.parametrize(("argv", "expected"), [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0", "--lr", "-1"], "--batch-size must be at least 1, got 0; --lr must be positive, got -1.0"),
    (["--val-fraction", "1"], "--val-fraction must be between 0 and 1, got 1.0"),
    (["--early-stop", "0", "--grad-clip", "0"], "--grad-clip must be positive, got 0.0; --early-stop must be a "
                                                "patience of 1 or more, got 0"),
    (["--device", "nonsense"], "--device nonsense cannot be used here (torch: Expected one of cpu, cuda"),
])
def test_train_refuses_bad_arguments_in_one_line_before_making_its_run_folder(tmp_path, capsys, argv, expected):
    out = tmp_path / "run"
    assert main(["train", "--space", "fade", "--arch", FADE_ARCH, *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("argv", "expected"), [
    (["--select", "pt", "--epochs", "4", "--pt-tune-epochs", "2", "--pt-tune-rounds", "3"],
     "DARTS-PT's tuning is bounded by the search's --epochs 4, but --pt-tune-epochs 2 × --pt-tune-rounds 3 = 6 "
     "epochs; pass --pt-tune-rounds 2 (or --pt-tune-epochs 1), or raise --epochs"),
    (["--select", "pt", "--epochs", "2", "--pt-tune-epochs", "3"],
     "one tuning takes --pt-tune-epochs 3; pass --pt-tune-epochs 2 or fewer, or raise --epochs"),
    (["--select", "pt", "--pt-tune-rounds", "-1"], "--pt-tune-epochs and --pt-tune-rounds are 0 or more"),
    (["--pt-tune-rounds", "2"], "--pt-tune-rounds set DARTS-PT's tuning; use them with --select pt"),
])
def test_darts_pt_tuning_is_bounded_by_epochs_before_the_run_folder_is_made(tmp_path, capsys, argv, expected):
    out = tmp_path / "run"
    assert main(["darts", "--space", "s5", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("argv", "tuning"), [
    (["--epochs", "3"], {"tune_epochs": 1, "tune_rounds": 3}),                        # as many as --epochs holds
    (["--epochs", "7", "--pt-tune-epochs", "2"], {"tune_epochs": 2, "tune_rounds": 3}),
    (["--epochs", "7", "--pt-tune-epochs", "3", "--pt-tune-rounds", "1"], {"tune_epochs": 3, "tune_rounds": 1}),
])
def test_darts_pt_passes_its_tuning_to_the_search(tmp_path, capsys, monkeypatch, argv, tuning):
    called = {}

    def search_darts(*args, **kwargs):
        called.update(kwargs)
        raise SpaceError("stop here")

    monkeypatch.setattr("archgraph.oneshot.search_darts", search_darts)
    assert main(["darts", "--space", "s5", "--select", "pt", *argv, "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    assert "stop here" in capsys.readouterr().err
    assert {key: called[key] for key in tuning} == tuning


def test_nosh_epochs_that_make_no_pyramid_are_one_line_naming_the_nearest(tmp_path, capsys):
    assert main(["search", "--space", "mlp", "--strategy", "nosh", "--epochs", "3", "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epochs=3" in err and "the nearest are 2 and 4" in err
    assert not (tmp_path / "run").exists(), "a refused search leaves no run folder"

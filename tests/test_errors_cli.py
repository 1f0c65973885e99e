"""Bad input through the CLI: one line naming the problem, exit status 2, and no run folder."""

from pathlib import Path

import pytest

from archgraph.cli import main

FADE_ARCH = str(Path(__file__).parent.parent / "examples" / "fade_arch.json")
TRAIN = ["train", "--space", "fade", "--arch", FADE_ARCH]

BAD = [  # argv, what the line must say
    (["search", "--strategy", "fade", "--strategy-param", "tau=-1"],
     "strategy 'fade' refuses tau=-1: the Gumbel temperature tau must be positive, got -1"),
    (["search", "--strategy", "fade", "--strategy-param", "max_norm=-1"], "refuses max_norm=-1: need max_norm >= 0"),
    (["search", "--strategy", "fade", "--strategy-param", "gamma=0"], "refuses gamma=0: need hyper_epochs >= 1"),
    (["search", "--strategy", "fade", "--strategy-param", "estimator='x'"], "estimator is 'sampled'"),
    (["search", "--strategy", "fade", "--strategy-param", "tua=1"], "strategy 'fade' has no parameter 'tua'"),
    (["search", "--strategy", "evolution", "--space", "nb201", "--strategy-param", "sample_size=20"],
     "need 1 <= sample_size <= population_size, got 20 and 10"),
    (["search", "--strategy", "nosh", "--strategy-param", "eta=1"], "need eta >= 2"),
    (["search", "--strategy", "sh", "--strategy-param", "levels=0"], "levels must be at least 1, got 0"),
    (["search", "--strategy", "controller", "--space", "mlp", "--strategy-param", "batch=0"], "need batch >= 1"),
    (["search", "--strategy", "nosh", "--strategy-param", "predictor='xgb'"], "predictor must be None, 'gnn'"),
    (["search", "--epochs", "0"], "epochs per trial must be at least 1, got 0"),
    (["search", "--trials", "0"], "a budget's trials, epochs and seconds are positive"),
    (["search", "--seconds", "-5"], "got trials=1, seconds=-5.0"),
    (["search", "--batch-size", "0"], "batch_size must be at least 1, got 0"),
    (["search", "--lr", "-1"], "need lr >= 0 and weight_decay >= 0, got lr=-1.0"),
    (["search", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    (["search", "--space", "nosuch"], "no space named 'nosuch'"),
    (["search", "--param", "kernel_size=4"], "kernel_size must be an odd whole number of 1 or more"),
    (["search", "--param", "channels=-1"], "channels must be a whole number of 1 or more"),
    (["search", "--param", "chanels=4"], "chanels"),
    (["search", "--pruner", "median", "--pruner-param", "min_trials=0"], "min_trials >= 1"),
    (["search", "--objective", "val_accuracy:up"], "an objective is NAME:max or NAME:min"),
    (["search", "--evaluator", "process", "--workers", "0"], "workers must be at least 1, got 0"),
    (["train", "--space", "fade", "--arch", "missing.json"], "architecture file missing.json does not exist"),
    ([*TRAIN, "--epochs", "0"], "--epochs must be at least 1, got 0"),
    ([*TRAIN, "--param", "kernel_size=4"], "kernel_size must be an odd whole number"),
    ([*TRAIN, "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
    ([*TRAIN, "--val-fraction", "1.5"], "--val-fraction must be between 0 and 1, got 1.5"),
    (["darts", "--epochs", "0"], "epochs must be an int of at least 1, got 0"),
    (["darts", "--space", "fade"], "is not a DARTS space"),
]


@pytest.mark.parametrize("argv, expected", BAD, ids=[" ".join(a[-2:]) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.chdir(tmp_path)  # a default run folder would go to ./runs
    out = tmp_path / "run"
    budget = ["--trials", "1"] if argv[0] == "search" and "--trials" not in argv else []
    assert main([*argv, *budget, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archgraph: error: ") and err.count("\n") == 1 and expected in err, err
    assert not out.exists() and not (tmp_path / "runs").exists()

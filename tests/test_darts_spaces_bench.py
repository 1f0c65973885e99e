"""Smoke test of benchmarks/darts_spaces.py: a tiny run of DARTS, R-DARTS(DP) and RS-ws, its results file, a resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SETTINGS = ["--task", "digits", "--train-samples", "64", "--spaces", "s2", "--epochs", "2", "--eigen-every", "1",
            "--retrain-epochs", "1", "--rdarts-epochs", "1", "--samples", "4", "--batch", "32",
            "--drop-path-probs", "0.4"]
PARAM_FREE_CODES = set("kmanz")  # skip, max/avg pool, noise, none in the compact genotypes


def bench(tmp_path, *args, out="r"):
    out = subprocess.run([sys.executable, "darts_spaces.py", *SETTINGS, "--out", str(tmp_path / f"{out}.json"),
                          "--figure", str(tmp_path / f"{out}.png"), *args], cwd=BENCHMARKS, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    return out


def test_a_tiny_run_tracks_the_trajectory_writes_the_table_and_resumes(tmp_path):
    first = bench(tmp_path, "--methods", "darts", "rdarts-dp", "rsws")
    assert first.returncode == 0, first.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["command"].startswith("python darts_spaces.py") and (tmp_path / "r.png").stat().st_size > 0
    runs = {run["method"]: run for run in results["runs"]}
    assert list(runs) == ["darts", "rdarts-dp", "rsws"]
    for run in runs.values():  # the share of the normal cell's ops without weights, from the genotype's codes
        normal = run["genotype"].split(" / ")[0].replace("+", " ").split()
        assert run["param_free"] == sum(edge[0] in PARAM_FREE_CODES for edge in normal) / len(normal) and len(normal) == 8
        assert run["arch_steps_per_epoch"] == 1  # 32 samples per half, batch 32
    for method in ("darts", "rdarts-dp"):  # λ_max and the share tracked every epoch of the α searches
        rows = runs[method]["history"]
        assert [row["epoch"] for row in rows] == [0, 1]
        assert all(row["eigenvalue"] > 0 and 0 <= row["param_free"] <= 1 for row in rows)
    assert runs["rdarts-dp"]["note"] == "DP=0.4" and runs["rsws"]["eigenvalue"] is None
    assert "final λ_max vs test error" in first.stdout

    again = bench(tmp_path, "--methods", "darts", "rsws", "--resume")  # all done: nothing searched again
    assert again.returncode == 0 and "] search" not in again.stdout and "rdarts-dp" in again.stdout
    assert json.loads((tmp_path / "r.json").read_text())["runs"] == results["runs"]
    merged = bench(tmp_path, "--methods", "rsws", "--merge", str(tmp_path / "r.json"), out="m")
    assert merged.returncode == 0 and "] search" not in merged.stdout
    assert json.loads((tmp_path / "m.json").read_text())["runs"] == results["runs"]
    other = bench(tmp_path, "--methods", "darts", "--resume", "--epochs", "3")
    assert other.returncode != 0 and "made with other settings (epochs)" in other.stderr

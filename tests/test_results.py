import csv
import json
import sys

import pytest

from archgraph import ArchGraph
from archgraph.results import FIELDS, architecture_hash, flat_rows, to_dataframe, write_csv, write_json
from archgraph.store import STORE_FILE, MemoryStore, SQLiteStore
from archgraph.oneshot.hyper_trial import TrainHyperArchitecture
from archgraph.trial import Result, Trial

CELL = ArchGraph([(0, 1), (1, 2)])


def store_of_three() -> MemoryStore:
    """A complete trial, a failed one with other metrics' absence, and a hyper trial with its own metrics."""
    store = MemoryStore()
    store.set_config({"strategy": "random", "space": "fade"})
    store.record_ask(Trial(id=0, arch=(CELL, CELL), budget=2, seed=1))
    store.record_ask(Trial(id=1, arch=(CELL, ArchGraph([(0, 1)])), budget=2, seed=2))
    store.record_ask(Trial(id=2, arch=(CELL,), budget=1, seed=3, info={"step": 0}, task=TrainHyperArchitecture(
        rows=1, width=1, tau=10.0, shared=True, cell_dependent=False, estimator="all")))
    store.record_tell(Result(0, {"val_accuracy": 0.5, "parameters": 120}, ({"epoch": 0, "val_accuracy": 0.25},
                                                                            {"epoch": 1, "val_accuracy": 0.5}),
                             checkpoint="checkpoints/trial-0.pt", seconds=2.0))
    store.record_tell(Result.failure(1, "RuntimeError: out of memory", seconds=0.5))
    store.record_tell(Result(2, {"hyper_train_accuracy": 0.75, "seconds": 9}, seconds=3.0))
    return store


def test_flat_rows_put_the_fields_first_then_one_column_per_metric_then_the_architecture():
    rows = flat_rows(store_of_three().records())
    assert all(list(row) == [*FIELDS, "val_accuracy", "parameters", "hyper_train_accuracy", "metrics.seconds",
                             "architecture", "task", "info"] for row in rows)
    complete, failed, hyper = rows
    assert (complete["state"], complete["val_accuracy"], complete["parameters"], complete["hyper_train_accuracy"]) == (
        "complete", 0.5, 120, None)
    assert (failed["state"], failed["error"], failed["val_accuracy"], failed["seconds"]) == (
        "failed", "RuntimeError: out of memory", None, 0.5)
    assert (hyper["kind"], hyper["seconds"], hyper["metrics.seconds"]) == ("hyper", 3.0, 9)  # no clash
    assert [ArchGraph.from_dict(c) for c in json.loads(complete["architecture"])] == [CELL, CELL]
    assert json.loads(hyper["info"]) == {"step": 0} and json.loads(hyper["task"])["rows"] == 1
    assert json.loads(complete["task"]) == {"type": "architecture", "module": "archgraph.trial", "init_from": {}}
    assert complete["hash"] == architecture_hash([CELL, CELL]) != failed["hash"]


def test_the_architecture_hash_is_the_same_for_isomorphic_cells_and_depends_on_their_order():
    a, b = ArchGraph([(0, 1), (0, 2)]), ArchGraph([(2, 0), (2, 1)])
    chain = ArchGraph([(0, 1), (1, 2)])
    assert architecture_hash([a, chain]) == architecture_hash([b, chain]) != architecture_hash([chain, a])


def test_csv_export_has_a_header_and_one_row_per_trial(tmp_path):
    records = store_of_three().records()
    out = tmp_path / "trials.csv"
    text = write_csv(records, out)
    assert out.read_text() == text
    rows = list(csv.DictReader(out.open()))
    assert [row["trial"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["val_accuracy"] == "0.5" and rows[1]["val_accuracy"] == "" and rows[1]["state"] == "failed"
    assert json.loads(rows[0]["architecture"]) == records[0]["architecture"]
    assert write_csv([]).splitlines() == [",".join([*FIELDS, "architecture", "task", "info"])]


def test_json_export_holds_the_config_and_the_records_with_their_curves(tmp_path):
    store = store_of_three()
    out = tmp_path / "trials.json"
    write_json(store.records(), store.config(), out)
    data = json.loads(out.read_text())
    assert (data["format"], data["version"], data["config"]) == ("archgraph-trials", 1, store.config())
    assert data["trials"] == store.records()
    assert [row["val_accuracy"] for row in data["trials"][0]["curve"]] == [0.25, 0.5]


def test_the_json_export_writes_nan_as_null():
    store = MemoryStore()
    store.record_ask(Trial(id=0, arch=(CELL,), budget=1, seed=0))
    store.record_tell(Result(0, {"val_accuracy": 0.5, "test_accuracy": float("nan")}, curve=({"lr": float("inf")},)))
    data = json.loads(write_json(store.records(), None), parse_constant=lambda word: pytest.fail(f"export holds {word}"))
    assert data["trials"][0]["metrics"] == {"val_accuracy": 0.5, "test_accuracy": None}
    assert data["trials"][0]["curve"] == [{"lr": None}]


def test_a_dataframe_has_one_row_per_trial_indexed_by_id():
    pd = pytest.importorskip("pandas", reason="pandas is optional (pip install \"archgraph[data]\")")
    store = store_of_three()
    df = store.to_dataframe()
    assert isinstance(df, pd.DataFrame) and list(df.index) == [0, 1, 2]
    assert list(df.columns) == list(flat_rows(store.records())[0])
    assert df.loc[0, "val_accuracy"] == 0.5 and pd.isna(df.loc[1, "val_accuracy"])
    assert df.sort_values("seconds")["trial"].tolist() == [1, 0, 2]
    assert to_dataframe([]).empty and "val_accuracy" not in to_dataframe([]).columns


def test_a_dataframe_without_pandas_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match=r'needs pandas; install it with: pip install "archgraph\[data\]"'):
        store_of_three().to_dataframe()


def test_records_of_a_real_run_name_its_checkpoints_and_metrics(tiny_run):
    with SQLiteStore(tiny_run / STORE_FILE, read_only=True) as store:
        records = store.records()
    assert [r["state"] for r in records] == ["complete"] * 3
    for r in records:
        assert (tiny_run / r["checkpoint"]).is_file()
        assert {"val_accuracy", "test_accuracy", "parameters", "epochs"} <= set(r["metrics"])
        assert r["metrics"]["val_accuracy"] == r["curve"][-1]["val_accuracy"] and r["seconds"] > 0

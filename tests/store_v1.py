"""A run's store as archgraph wrote it before trial states (store schema 1), for the migration tests.

The schema and the writes are copied from ``archgraph/store.py`` of schema 1: each ask was one
transaction (the trial row and its event), each tell another (the result row and its event),
a result's JSON had no ``state``, ``error`` or ``traceback``, and a trial's no ``task`` (the
trials given must train their architecture, the task that left no trace then).
"""

import json
import sqlite3

SCHEMA_1 = """
CREATE TABLE config (id INTEGER PRIMARY KEY CHECK (id = 0), json TEXT NOT NULL);
CREATE TABLE trials (id INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE results (trial_id INTEGER PRIMARY KEY REFERENCES trials (id), json TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ask', 'tell')),
    trial_id INTEGER NOT NULL REFERENCES trials (id),
    at REAL NOT NULL,
    UNIQUE (kind, trial_id)
);
"""
_NEW_KEYS = ("state", "error", "traceback")
_NEW_TRIAL_KEYS = ("task",)


def write_v1_store(path, config, trials, results, events):
    """Write a schema-1 store at ``path``: ``config`` (a dict), ``trials`` and ``results`` (by id),
    replayed in the order of ``events`` (``(kind, trial_id)`` pairs), as schema-1 code wrote them."""
    with sqlite3.connect(path) as db:
        db.executescript(f"BEGIN; {SCHEMA_1} PRAGMA user_version = 1; COMMIT;")
        db.execute("INSERT INTO config (id, json) VALUES (0, ?)", (json.dumps(config),))
        for at, (kind, trial_id) in enumerate(events, start=1):
            if kind == "ask":
                old = {k: v for k, v in trials[trial_id].to_dict().items() if k not in _NEW_TRIAL_KEYS}
                db.execute("INSERT INTO trials (id, json) VALUES (?, ?)", (trial_id, json.dumps(old)))
            else:
                old = {k: v for k, v in results[trial_id].to_dict().items() if k not in _NEW_KEYS}
                db.execute("INSERT INTO results (trial_id, json) VALUES (?, ?)", (trial_id, json.dumps(old)))
            db.execute("INSERT INTO events (kind, trial_id, at) VALUES (?, ?, ?)", (kind, trial_id, float(at)))
    db.close()

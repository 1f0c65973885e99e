"""The example scripts run (with their smallest settings)."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_mutation_search_runs_and_reports_the_best():
    out = subprocess.run([sys.executable, str(EXAMPLES / "mutation_search.py"), "--steps", "1", "--epochs", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("start: val accuracy") and "step 0: mutate cell" in out and "best: val accuracy" in out

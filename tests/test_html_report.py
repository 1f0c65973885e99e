import itertools
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from archgraph import ArchGraph
from archgraph.cli import main
from archgraph.errors import ArchGraphError
from archgraph.html_report import render_report, write_report
from archgraph.oneshot.hyper_trial import load_hyper
from archgraph.pareto import pareto_records
from archgraph.results import read_run
from archgraph.runs import format_table
from archgraph.store import STORE_FILE, SQLiteStore
from archgraph.trial import Result, Trial

CHROMIUM = shutil.which("chromium")


def small_search(tmp_path_factory, strategy, **settings):
    """A run folder of a search of one-epoch trials of the fade space (channels=2) on digits."""
    from archgraph.search.session import SearchConfig, search

    run = tmp_path_factory.mktemp(strategy) / "run"
    search(SearchConfig(strategy=strategy, epochs=1, space_params={"channels": 2, "kernel_size": 3},
                        training={"batch_size": 256}, **settings), run, progress=False)
    return run


@pytest.fixture(scope="module")
def fade_run(tmp_path_factory):
    """A FaDE search: a hyper-architecture trained 2 epochs, then 2 architectures drawn from it."""
    return small_search(tmp_path_factory, "fade", trials=3, strategy_params={"draws": 2, "hyper_epochs": 2})


class Page(HTMLParser):
    """The tags, attribute values and tables (id → rows of cell texts) of a page."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.attributes, self.tables, self.table, self.row = [], [], {}, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag == "table":
            self.table = self.tables.setdefault(dict(attrs).get("id", f"table{len(self.tables)}"), [])
        elif tag == "tr":
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th"):
            self.row.append("")

    def handle_data(self, data):
        if self.row is not None and self.tags and self.tags[-1] in ("td", "th"):
            self.row[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None


def ranked(records):
    return [r for r in records if r["state"] == "complete" and "val_accuracy" in r["metrics"]]


def test_the_report_of_two_runs_holds_every_figure_and_every_trial_and_nothing_from_outside(tiny_run, fade_run,
                                                                                             tmp_path):
    out = write_report([tiny_run, fade_run], tmp_path / "report.html")
    text = out.read_text()
    page = Page(text)
    assert not re.search(r"https?://|src=|<link|@import|url\((?!#)", text)  # nothing fetched
    assert all(value.startswith("#") for _, name, value in page.attributes if name.endswith("href"))
    runs = [read_run(run)[1] for run in (tiny_run, fade_run)]
    # best-so-far over trials and over seconds; per run: the best architectures (3 at most), the front,
    # the learning curves; FaDE: the anchors and the last hyper-architecture's row weights
    figures = 2 + sum(min(3, len(ranked(recs))) + 2 for recs in runs) + 2
    assert page.tags.count("svg") == page.tags.count("figure") == figures
    for index, recs in enumerate(runs):
        header, *rows = page.tables[f"trials-{index}"]
        assert [int(row[0]) for row in rows] == [r["trial"] for r in recs]  # every trial, by id
        front = [int(row[0]) for row in rows if row[header.index("front")] == "yes"]
        assert front == [r["trial"] for r in pareto_records(recs)] and front
        assert [row[header.index("hash")] for row in rows] == [r["hash"][:10] for r in recs]
        assert [row[header.index("flops")] for row in rows if row[1] == "complete" and row[2] == "architecture"] == [
            str(r["metrics"]["flops"]) for r in ranked(recs)]
    hyper = max(r["trial"] for r in runs[1] if r["kind"] == "hyper")
    alpha = load_hyper(fade_run / "hyper" / f"trial-{hyper}.json").probabilities.tolist()
    paths = next(rows for rows in page.tables.values() if rows[0][0] == "path")
    assert len(paths) == 1 + 5
    best = max(math.prod(weights) for weights in itertools.product(*alpha))
    assert paths[1][1] == f"{best:.3g}"  # the best path's FaDE-rank: the product of its rows' weights
    assert f"Run {tiny_run}" in text and f"Run {fade_run}" in text


def test_a_run_in_progress_is_reported_without_blocking_its_writer(tmp_path):
    with SQLiteStore(tmp_path / STORE_FILE) as store:
        store.set_config({"strategy": "random", "space": "fade"})
        for i in range(2):
            store.record_ask(Trial(id=i, arch=[ArchGraph([(0, 1), (1, 2)])], budget=1, seed=i))
        store.record_tell(Result(0, {"val_accuracy": 0.5, "parameters": 10}))
        page = Page(render_report([tmp_path]))  # the writer's connection is open
        store.record_tell(Result(1, {"val_accuracy": 0.25, "parameters": 5}))
    assert [row[:2] for row in page.tables["trials-0"][1:]] == [["0", "complete"], ["1", "running"]]


def test_the_command_writes_the_report_and_refuses_a_folder_without_a_run(tiny_run, tmp_path, capsys):
    assert main(["report", str(tiny_run), "--out", str(tmp_path / "r.html")]) == 0
    assert "written to" in capsys.readouterr().out and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no search run" in capsys.readouterr().err
    with pytest.raises(ArchGraphError, match="at least one run folder"):
        render_report([])


def test_runs_pareto_prints_the_front(tiny_run, capsys):
    assert main(["runs", "pareto", str(tiny_run), "--objective", "test_accuracy:max", "--objective", "flops:min"]) == 0
    lines = capsys.readouterr().out.splitlines()
    front = pareto_records(read_run(tiny_run)[1], [("test_accuracy", "max"), ("flops", "min")])
    assert [int(line.split()[0]) for line in lines[2:]] == [r["trial"] for r in front]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_chromium_loads_the_report_without_console_errors_and_sorts_and_filters(tiny_run, tmp_path):
    text = write_report([tiny_run], tmp_path / "report.html").read_text()
    records = read_run(tiny_run)[1]
    worst = min(ranked(records), key=lambda r: r["metrics"]["val_accuracy"])
    clicks = f"""<script>
const th = Array.from(document.querySelectorAll('#trials-0 th')).find(h => h.textContent === 'val_accuracy');
th.click(); th.click();  // descending
const filter = document.querySelector('input.filter'); filter.value = '{worst["hash"][:10]}';
filter.dispatchEvent(new Event('input'));
</script></body>"""
    (tmp_path / "clicked.html").write_text(text.replace("</body>", clicks))
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", (tmp_path / "clicked.html").as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "CONSOLE" not in run.stderr, run.stderr[-2000:]
    dom = run.stdout
    rows = re.findall(r"<tr( hidden=\"\")?><td>(\d+)</td>", dom.split('id="trials-0"')[1].split("</table>")[0])
    order = sorted(ranked(records), key=lambda r: -r["metrics"]["val_accuracy"])
    assert [int(trial) for _, trial in rows] == [r["trial"] for r in order]
    assert [int(trial) for hidden, trial in rows if not hidden] == [worst["trial"]]
    assert dom.count("<svg") == text.count("<svg") > 0


@pytest.fixture(scope="module")
def bo_run(tmp_path_factory):
    """A BO search of 3 one-epoch trials (its GP fitted after 2 random points)."""
    return small_search(tmp_path_factory, "bo", trials=3, strategy_params={"draws": 1, "initial_points": 2})


def chromium(url, *flags):
    """Headless Chromium on ``url``: its exit status, its stderr (console messages) and stdout."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                           *flags, url], capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
@pytest.mark.parametrize("runs", [["fade"], ["bo"], ["fade", "bo"]])
def test_chromium_shows_the_report_of_a_fade_run_a_bo_run_and_both(runs, fade_run, bo_run, tmp_path):
    import matplotlib.image

    folders = [{"fade": fade_run, "bo": bo_run}[name] for name in runs]
    out = write_report(folders, tmp_path / "report.html")
    text = out.read_text()
    shown = chromium(out.as_uri(), "--dump-dom")
    assert shown.returncode == 0 and "CONSOLE" not in shown.stderr, shown.stderr[-2000:]
    assert shown.stdout.count("<svg") == text.count("<svg") and all(f"Run {f}" in shown.stdout for f in folders)
    for index, folder in enumerate(folders):  # every trial's row, as rendered
        rendered = shown.stdout.split(f'id="trials-{index}"')[1].split("</table>")[0]
        assert [int(t) for t in re.findall(r"<tr><td>(\d+)</td>", rendered)] == [r["trial"] for r in read_run(folder)[1]]
    shot = chromium(out.as_uri(), f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1200,2400",
                    "--hide-scrollbars")
    assert shot.returncode == 0
    pixels = matplotlib.image.imread(tmp_path / "shot.png")[..., :3]
    coloured = ((pixels.max(axis=2) - pixels.min(axis=2)) > 0.2).mean()  # the figures' curves and points
    assert coloured > 0.001, f"the screenshot shows almost nothing in colour ({coloured:.5f})"


@pytest.fixture(scope="module")
def two_objective_run(tmp_path_factory):
    """A random search on digits for validation accuracy and few parameters."""
    return small_search(tmp_path_factory, "random", trials=8, strategy_params={"draws": 1},
                        objectives=["val_accuracy:max", "parameters:min"])


def test_the_report_of_a_two_objective_search_shows_its_front_of_non_dominated_trials(two_objective_run, tmp_path):
    text = write_report([two_objective_run], tmp_path / "report.html").read_text()
    page = Page(text)
    header, *rows = page.tables["trials-0"]
    shown = [int(row[0]) for row in rows if row[header.index("front")] == "yes"]
    complete = [r for r in read_run(two_objective_run)[1] if r["state"] == "complete"]
    points = {r["trial"]: (r["metrics"]["val_accuracy"], r["metrics"]["parameters"]) for r in complete}

    def dominated(p):  # brute force: another trial at least as accurate and as small, better in one
        return any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in points.values())

    assert shown == [trial for trial, p in points.items() if not dominated(p)] and len(shown) >= 1
    assert "<h3>val_accuracy against parameters</h3>" in text
    assert json.loads((two_objective_run / "front.json").read_text())["trials"] == [
        {"trial": r["trial"], **r["metrics"]} for r in complete if r["trial"] in shown]


def test_the_report_of_a_nosh_run_draws_its_pyramid(tmp_path):
    from archgraph.search.session import SearchConfig, search

    run = tmp_path / "nosh"
    search(SearchConfig(space="mlp", strategy="nosh", trials=6, epochs=2, strategy_params={"n_new": 4},
                        training={"batch_size": 256}), run, progress=False)
    records = read_run(run)[1]
    page = Page(render_report([run]))
    header, *rows = next(rows for rows in page.tables.values() if rows[0][:3] == ["rung", "epochs", "trials"])
    resumed = {r["resume_from"] for r in records}
    expected = [[str(level), str(budget), str(len(at)), str(sum(r["trial"] in resumed for r in at))]
                for level, budget in ((0, 1), (1, 2)) for at in [[r for r in records if r["info"]["level"] == level]]]
    assert [row[:4] for row in rows] == expected and expected[0][2:] == ["4", "2"]
    assert page.tags.count("svg") == 2 + 3 + 2 + 1  # compared runs, best architectures, front, curves, pyramid


def test_the_report_of_a_darts_run_draws_alpha_over_the_epochs_and_lambda_max(tmp_path):
    run = tmp_path / "darts"
    assert main(["darts", "--space", "nb201", "--method", "es", "--epochs", "2", "--retrain-epochs", "0", "--C", "4",
                 "--layers", "1", "--batch-size", "256", "--no-progress", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    text = render_report([run])
    page = Page(text)
    assert page.tags.count("svg") == 2 and "α over the epochs" in text and "λ_max" in text
    settings = dict(page.tables["table0"][1:])
    assert settings["method"] == "es" and settings["eigenvalue"] == json.dumps(metrics["eigenvalue"])
    alpha = text.split("<figure>")[1]  # one panel per edge of the cell: 6 in NAS-Bench-201's
    assert len(metrics["history"][0]["alpha"]) == 6 and ">row 6<" in alpha and ">row 7<" not in alpha
    assert all(row["eigenvalue"] is not None for row in metrics["history"])  # DARTS-ES measures it every epoch


def test_runs_list_gives_the_front_of_a_two_objective_run(two_objective_run, tiny_run):
    from archgraph.runs import summarise

    front = json.loads((two_objective_run / "front.json").read_text())["trials"]
    assert summarise(two_objective_run).front == [t["trial"] for t in front]
    assert summarise(tiny_run).front is None  # a run of the validation accuracy alone has its best
    line = format_table([two_objective_run], two_objective_run.parent)[1]
    assert f"front: trials {', '.join(str(t['trial']) for t in front)}" in line

"""The static HTML report of a search and of a model run: ``run.report(path)``, ``write_report(folder, path)`` and
``msexplore report RUN_DIR -o FILE``.

Real TVM with tiny budgets: one 8-trial search of a 32x32x32 GMM (two batches, so the second has the cost model's
predictions) and one 4-trial tuning of a two-layer MLP imported from Relax, shared through module fixtures. Each
report is parsed (``html.parser``): its sections, the plotly JSON of its figures, and every attribute or script that
could load something from another host. That the page draws in a browser offline is tests/browser's.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tvm.script import ir as I
from tvm.script import relax as R

import msexplore as mx
from msexplore.cli import main
from msexplore.report import write_report
from msexplore.report._failures import WRONG_RESULT, FailureGroup, failure_groups, failures_html
from msexplore.report._machine import cpu_model, machine_facts
from msexplore.report._page import slug
from msexplore.report._search import SECTION_TITLES
from msexplore.search import background
from msexplore.search.events import TrialEvent
from msexplore.search.folder import LOST

SMALL = dict(batch_size=4, population_size=32, init_min_unmeasured=8)
MODEL_SMALL = dict(batch_size=2)  # tune_model's default strategy, the beam
SEARCH_SECTIONS = list(SECTION_TITLES)
MODEL_SECTIONS = ["tuned", "latency", "tasks", "searches"]
NOT_A_RUN = ("holds no run; give the work_dir of an mx.search run (with run.json) or of an mx.tune_model run "
             "(with model.json)")


@I.ir_module
class TwoLayers:
    @R.function
    def main(x: R.Tensor((1, 32), "float32"), w1: R.Tensor((32, 64), "float32"), w2: R.Tensor((64, 32), "float32")):
        with R.dataflow():
            h = R.nn.relu(R.matmul(x, w1))
            y = R.nn.relu(R.matmul(h, w2))
            R.output(y)
        return y


# ---- reading a report back ---------------------------------------------------------------------------------------


class _ReportParser(HTMLParser):
    """Sections (anchor -> title), figures (target -> plotly JSON), scripts, and every attribute naming a resource."""

    RESOURCE_ATTRS = {"src", "href", "srcset", "action", "formaction", "data", "poster", "background", "xlink:href"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, str] = {}
        self.figures: dict[str, dict] = {}
        self.scripts: list[tuple[dict, str]] = []
        self.resources: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.styles: list[str] = []
        self._open: list[tuple[str, dict]] = []
        self._text: list[str] = []
        self._section: list[str] = []
        self._heading: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        self.resources += [(tag, k, v or "") for k, v in attrs.items() if k in self.RESOURCE_ATTRS]
        if tag == "section":
            self._section.append(attrs["id"])
        if tag in ("h2", "h3") and self._section and self._section[-1] not in self.sections:
            self._heading = self._section[-1]
        if tag in ("script", "style", "h2", "h3"):
            self._open.append((tag, attrs))
            self._text = []

    def handle_endtag(self, tag):
        if tag == "section" and self._section:
            self._section.pop()
        if not self._open or self._open[-1][0] != tag:
            return
        _, attrs = self._open.pop()
        text = "".join(self._text)
        if tag == "script":
            self.scripts.append((attrs, text))
            if "msx-figure-data" in attrs.get("class", ""):
                self.figures[attrs["data-target"]] = json.loads(text)
        elif tag == "style":
            self.styles.append(text)
        elif self._heading is not None:
            self.sections[self._heading] = text
            self._heading = None

    def handle_data(self, data):
        if self._open:
            self._text.append(data)


def parse(path: Path) -> SimpleNamespace:
    text = path.read_text(encoding="utf-8")
    parser = _ReportParser()
    parser.feed(text)
    parser.close()
    return SimpleNamespace(text=text, **vars(parser))


def points(values) -> np.ndarray:
    """A trace's ``x``/``y`` as numbers: a list, or plotly's typed array (``{"dtype", "bdata"}``)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


def between(text: str, start: str, end: str) -> str:
    """The HTML from ``start`` to the next ``end`` (a section's body)."""
    i = text.index(start)
    return text[i : text.index(end, i)]


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- the runs --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32))
    run = mx.search(space, trials=8, work_dir=tmp_path_factory.mktemp("report") / "gmm", **SMALL).wait()
    assert run.status == "done", run.error
    return run


@pytest.fixture(scope="module")
def search_report(search_run, tmp_path_factory):
    path = search_run.report(tmp_path_factory.mktemp("report-html") / "gmm.html")
    return parse(path)


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    shapes = {"w1": (32, 64), "w2": (64, 32)}
    weights = {name: rng.uniform(-1, 1, shape).astype("float32") for name, shape in shapes.items()}
    model = mx.Model.from_relax(TwoLayers, weights, name="two_layers")
    run = mx.tune_model(model, trials=4, work_dir=tmp_path_factory.mktemp("report") / "model", **MODEL_SMALL).wait()
    assert run.status == "done", run.error
    return run


# ---- a search's report -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_search_report_has_every_section_in_order_with_its_contents_line(search_report):
    assert list(search_report.sections) == SEARCH_SECTIONS
    assert list(search_report.sections.values()) == list(SECTION_TITLES.values())
    anchors = [value for tag, attr, value in search_report.resources if tag == "a"]
    assert anchors == [f"#{key}" for key in SEARCH_SECTIONS]


@pytest.mark.slow
def test_a_search_report_draws_the_run_in_its_figures(search_report, search_run):
    figures = search_report.figures
    assert set(figures) == {"progress-figure", "decisions-figure", "cost-model-figure"}
    ok = [e for e in search_run.events if e.ok]
    progress = figures["progress-figure"]["data"]
    np.testing.assert_array_equal(points(progress[0]["x"]), [e.index for e in ok])  # candidates over trials
    assert points(progress[1]["y"])[-1] == pytest.approx(search_run.best.gflops)  # best so far ends at the best

    decisions = figures["decisions-figure"]
    coloured = [t for t in decisions["data"] if t.get("marker", {}).get("coloraxis")]
    assert coloured and all(len(t["x"]) for t in coloured)
    # the colour axis spans the bars' latencies (plotly.js alone would widen it to ±0.5 s around a one-value panel)
    assert decisions["layout"]["coloraxis"]["cmin"] == pytest.approx(search_run.best.latency_s)
    assert decisions["layout"]["coloraxis"]["cmax"] <= max(e.latency_s for e in ok)

    predicted = [e for e in ok if e.predicted is not None]
    assert predicted, "the second batch should carry the cost model's predictions"
    cost = figures["cost-model-figure"]["data"]
    assert sorted(np.concatenate([points(t["customdata"]) for t in cost])) == [e.index for e in predicted]


@pytest.mark.slow
def test_a_report_loads_nothing_from_another_host(search_report):
    assert search_report.resources and all(value.startswith("#") for _, _, value in search_report.resources)
    assert not {"link", "img", "iframe", "object", "embed", "video", "audio", "source"} & set(search_report.tags)
    assert not any("url(" in css or "@import" in css for css in search_report.styles)
    code = [(attrs, text) for attrs, text in search_report.scripts if attrs.get("type") != "application/json"]
    assert len(code) == 2 and "src" not in code[0][0]  # plotly.js inlined once, then the script that draws
    assert search_report.text.count("* plotly.js v") == 1
    drawing = code[1][1]
    for loader in ("fetch(", "XMLHttpRequest", "import(", "http://", "https://", ".src"):
        assert loader not in drawing
    for fig in search_report.figures.values():  # a URL in a figure (a layout image, a link) would be loaded
        assert "http://" not in json.dumps(fig) and "https://" not in json.dumps(fig)


@pytest.mark.slow
def test_what_was_searched_the_top_table_and_the_best_candidate(search_report, search_run):
    text = search_report.text
    searched = between(text, '<section id="searched">', "</section>")
    for fact in ("GMM b=1 n=32 m=32 k=32", "-num-cores=", "multi_level_tiling", "evolutionary (population_size=32",
                 "8 of 8 in the last session, batches of 4", "<th>seed</th><td>1</td>", cpu_model(),
                 str(search_run.work_dir)):
        assert fact in searched, fact
    # the run recorded the machine it measured on, so the report does not describe the one it was written on
    assert search_run.config["machine"]["cpu"] == cpu_model()
    assert "where this report was written" not in searched

    top = between(text, '<section id="top">', "</section>")
    ok = sorted((e for e in search_run.events if e.ok), key=lambda e: e.latency_s)
    assert top.count("<tr>") == 1 + min(10, len(ok))  # the header row, then the fastest first
    assert f'<tr><td class="msx-num">{search_run.best.index}</td>' in top

    best = between(text, '<section id="best">', "</section>")
    assert f"Trial {search_run.best.index}:" in best and "outputs checked against the reference" in best
    assert best.count('<div class="msx-line"') == (search_run.best.tir.count("\n") + 1
                                                  + search_run.best.python().count("\n") + 1)
    assert '<span class="msx-t-k">def</span>' in best  # highlighted by pygments
    assert "sample_perfect_tile" in best

    failures = between(text, '<section id="failures">', "</section>")
    n_failed = sum(not e.ok for e in search_run.events)
    assert ("No candidate failed." in failures) == (n_failed == 0)


@pytest.mark.slow
@pytest.mark.parametrize("kept", ["half the event log", "only run.json"])
def test_the_folder_of_a_killed_run_reports_what_it_holds_and_stays_as_it_was(search_run, tmp_path, kept):
    folder = tmp_path / "killed"
    if kept == "only run.json":
        folder.mkdir()
        shutil.copy(Path(search_run.work_dir) / "run.json", folder / "run.json")
    else:
        shutil.copytree(search_run.work_dir, folder)
        (folder / "status.json").unlink()
        log = folder / "events.jsonl"
        log.write_text("".join(log.read_text().splitlines(keepends=True)[:4]))  # the database has all 8
    before = folder_files(folder)
    report = parse(write_report(folder, tmp_path / "killed.html"))
    assert folder_files(folder) == before  # reading the folder wrote nothing there

    assert list(report.sections) == SEARCH_SECTIONS
    assert "msx-status-interrupted" in report.text and "ended without saying how (killed or crashed)" in report.text
    progress = report.figures["progress-figure"]
    if kept == "only run.json":
        assert progress["layout"]["annotations"][0]["text"] == "No trials yet."
        assert "No valid candidate yet." in report.text and "No valid candidate: no TIR to show." in report.text
        assert "No event of this run carries its decisions" in report.text
    else:  # the 4 events the log lacks are rebuilt from the database
        assert len(points(progress["data"][0]["x"])) == sum(e.ok for e in search_run.events)
        assert f"Trial {search_run.best.index}:" in report.text


# ---- a model run's report --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_model_run_report_has_the_task_table_the_latency_curve_and_each_task_search(model_run, tmp_path):
    report = parse(model_run.report(tmp_path / "model.html"))
    tasks = model_run.tasks
    names = list(tasks["task"])
    assert list(report.sections)[:4] == MODEL_SECTIONS
    nested = [f"task-{slug(name)}-{key}" for name in names for key in SEARCH_SECTIONS]
    assert sorted(list(report.sections)[4:]) == sorted(nested)

    table = between(report.text, '<section id="tasks">', "</section>")
    assert table.count("<tr data-task=") == len(names) == 2
    assert all(f"<code>{name}</code>" in table for name in names)

    latency = report.figures["latency-figure"]["data"][0]
    estimate = points(latency["y"])
    assert estimate[-1] == pytest.approx(model_run.progress.estimated_latency_s)

    for name in names:
        events = model_run.task_runs[name].events
        progress = report.figures[f"task-{slug(name)}-progress-figure"]["data"][0]
        assert len(points(progress["x"])) == sum(e.ok for e in events)
        assert f'<details id="task-{slug(name)}" class="msx-task">' in report.text  # folded, drawn when opened


# ---- the command line ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_cli_reports_a_search_folder_and_a_model_folder(search_run, model_run, tmp_path, capsys):
    out = tmp_path / "search.html"
    assert main(["report", str(search_run.work_dir), "-o", str(out)]) == 0
    assert f"report: {out} (" in capsys.readouterr().out
    assert list(parse(out).sections) == SEARCH_SECTIONS

    out = tmp_path / "model.html"
    assert main(["report", str(model_run.work_dir), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report"] == str(out) and summary["bytes"] == out.stat().st_size
    assert list(parse(out).sections)[:4] == MODEL_SECTIONS


def test_the_cli_refuses_what_is_not_a_run_folder_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    assert f"msexplore report: error: {str(tmp_path / 'empty')!r} {NOT_A_RUN}" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "is not a folder; give the work_dir of an mx.search run" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path)]) == 2  # the output is a folder
    assert "is a folder; give the report's file name" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_writing_a_report_loads_no_widget_library_and_importing_msexplore_no_plotly(search_run, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import msexplore
        assert "plotly" not in sys.modules, "import msexplore registers the report writer without loading it"
        from msexplore.cli import main
        assert main(["report", {str(search_run.work_dir)!r}, "-o", {str(tmp_path / "r.html")!r}]) == 0
        print(sorted(m for m in ("ipywidgets", "anywidget", "msexplore.ui.dashboard") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---- the parts -------------------------------------------------------------------------------------------------


def _event(index: int, **kw) -> TrialEvent:
    ok = not any(kw.get(k) for k in ("build_error", "run_error"))
    return TrialEvent(index=index, session=0, batch=0, time_s=0.1 * index, timestamp=1.7e9, design_space=0,
                      decisions={}, latency_s=1e-5 if ok else None, latencies_s=(1e-5,) if ok else (), **kw)


def test_failures_are_grouped_by_kind_and_error_line_most_frequent_first():
    traceback = 'Traceback (most recent call last):\n  File "x.py", line 1, in f\nTVMError: Vectorize failed\n'
    events = [
        _event(0),
        _event(1, run_error="RuntimeError: timeout\n"),
        _event(2, build_error=traceback),
        _event(3, run_error="wrong result: max abs error 0.5", max_abs_error=0.5),
        _event(4, build_error=traceback.replace("line 1", "line 7")),  # another frame, the same error line
        _event(5, run_error=LOST),
        _event(6, run_error="RuntimeError: timeout\n"),
        _event(7, build_error="TVMError: Vectorize failed"),
    ]
    assert failure_groups(events) == (
        FailureGroup("build", "TVMError: Vectorize failed", (2, 4, 7), traceback),
        FailureGroup("run", "RuntimeError: timeout", (1, 6), "RuntimeError: timeout\n"),
        FailureGroup("wrong result", WRONG_RESULT, (3,), "max abs error 0.5\nwrong result: max abs error 0.5"),
        FailureGroup("run", LOST, (5,), LOST),
    )
    html = failures_html(failure_groups(events))
    assert html.startswith("<p>7 failed candidates, 4 distinct errors:</p>")
    assert html.count('<details class="msx-failure">') == 4
    assert '<span class="msx-count">3×</span>TVMError: Vectorize failed' in html
    assert "trials 2, 4, 7; the first one's error:" in html
    assert failures_html(()) == '<div class="msx-note">No candidate failed.</div>'


def test_write_report_checks_its_arguments_before_reading_anything(tmp_path):
    with pytest.raises(TypeError, match="path must be a file name such as 'report.html', got int"):
        write_report(tmp_path, 3)
    with pytest.raises(ValueError, match="is a folder; give the report's file name"):
        write_report(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="does not exist; create it first"):
        write_report(tmp_path, tmp_path / "no" / "r.html")
    with pytest.raises(TypeError, match="write_report takes a SearchRun, a ModelRun or a run's folder, got list"):
        write_report([], tmp_path / "r.html")
    with pytest.raises(ValueError, match=NOT_A_RUN.replace("(", r"\(").replace(")", r"\)")):
        write_report(tmp_path, tmp_path / "r.html")


def test_run_report_needs_a_registered_writer(monkeypatch, tmp_path):
    assert background._report_writer is write_report  # registered by `import msexplore`
    monkeypatch.setattr(background, "_report_writer", None)
    with pytest.raises(RuntimeError, match="no report writer is registered"):
        background.BackgroundRun().report(tmp_path / "r.html")
    with pytest.raises(TypeError, match="register_report_writer expects a callable"):
        background.register_report_writer("write_report")


def test_the_machine_is_the_recorded_one_or_else_this_one_said_so(tmp_path):
    recorded = {"cpu": "Intel Xeon 8375C", "physical_cores": 32, "logical_cores": 64, "memory_gib": 251.5,
                "os": "Linux-6.1", "python": "3.11.7", "tvm": "0.27.0", "msexplore": "0.1.0"}
    rpc = {"host": "tracker", "port": 9190, "key": "rasp4"}
    assert machine_facts({"machine": recorded, "rpc": rpc}) == [
        ("measured on", "the devices of the RPC tracker tracker:9190, key 'rasp4' (built by the machine that ran "
                        "the search)"),
        ("machine", "Intel Xeon 8375C; 32 cores, 64 threads; 251.5 GiB"),
        ("software", "Linux-6.1; Python 3.11.7, TVM 0.27.0, msexplore 0.1.0"),
    ]
    here = dict(machine_facts({}))
    assert here["machine"].startswith(f"{cpu_model()}; ")
    assert here["machine"].endswith("(where this report was written: the run folder does not record its machine)")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.2GHz\n")
    assert cpu_model(str(cpuinfo)) == "Intel(R) Xeon(R) CPU @ 2.2GHz"


def test_report_help_names_its_arguments(capsys):
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("RUN_DIR", "-o FILE, --output FILE", "--json"):
        assert option in out, option

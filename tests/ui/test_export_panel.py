"""ExportPanel at model level: export the best of a real (stopped) search, load it back, check and time it."""

from __future__ import annotations

import json
import os

import pytest

from msexplore.ui.export_panel import ExportPanel

FAST_BENCHMARK = dict(number=2, repeat=2, min_repeat_ms=0)


@pytest.fixture(scope="module")
def exported(finished_run, tmp_path_factory):
    """A panel that exported the run's best, then loaded, checked and timed it."""
    folder = tmp_path_factory.mktemp("export") / "gmm-best"
    panel = ExportPanel(finished_run, folder=folder, benchmark=FAST_BENCHMARK)
    panel.export_button.click()
    panel.wait(300)
    export_state = dict(status=panel.status, error=panel.error_text, message=panel.message,
                        check_enabled=not panel.check_button.disabled)
    panel.check_button.click()
    panel.wait(300)
    return panel, folder, export_state


def test_export_writes_a_bundle_and_shows_its_manifest(exported, finished_run):
    panel, folder, state = exported
    assert state["status"] == "ok", state["error"]
    assert state["check_enabled"], "Load and check is offered once a bundle exists"
    assert panel.exported_path == str(folder.resolve())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == panel.bundle.manifest
    assert manifest["latency_s"] == finished_run.best.latency_s
    shown = panel.manifest_view.value
    for name, digest in manifest["files"].items():
        assert name in shown and digest[:12] in shown
        assert f"{os.path.getsize(folder / name):,} B" in shown
    assert "kernel.so" in manifest["files"]
    assert "GFLOPS" in shown and manifest["target"]["kind"] in shown


def test_load_and_check_reports_ok_and_a_timing(exported):
    panel, _, _ = exported
    assert panel.status == "ok", panel.error_text
    assert panel.check_result.ok
    assert panel.benchmark_result["median_s"] > 0 and len(panel.benchmark_result["results_s"]) == 2
    assert "outputs match the reference" in panel.check_view.value
    assert "match the reference" in panel.message


def test_an_existing_folder_is_refused_without_overwrite_and_replaced_with_it(exported, finished_run):
    _, folder, _ = exported
    panel = ExportPanel(finished_run, folder=folder, benchmark=FAST_BENCHMARK)
    before = (folder / "manifest.json").read_text()
    (folder / "left-over.txt").write_text("not part of a bundle")  # gone once the bundle is replaced as a whole
    panel.export_button.click()  # refused at once: no thread, nothing written
    assert panel._job is None and not panel.busy
    assert panel.status == "error" and panel.bundle is None
    assert "already exists" in panel.error_text and "overwrite" in panel.error_text
    assert "already exists" in panel.error_area.value and "msx-error" in panel.status_line.value
    assert (folder / "manifest.json").read_text() == before and (folder / "left-over.txt").exists()
    panel.overwrite.value = True
    panel.export_button.click()
    panel.wait(300)
    assert panel.status == "ok", panel.error_text
    assert panel.error_area.value == "" and panel.error_text == ""
    # the folder now holds exactly the bundle this panel wrote: its manifest, its files, nothing else
    assert panel.exported_path == str(folder.resolve())
    assert json.loads((folder / "manifest.json").read_text()) == panel.bundle.manifest
    assert sorted(p.name for p in folder.iterdir()) == sorted({"manifest.json", *panel.bundle.manifest["files"]})


def test_a_run_without_a_valid_candidate_says_so(synthetic, tmp_path):
    fake = synthetic(trials=8)
    fake.publish(fake.events(3, fail_every=1))  # every candidate failed
    fake.end("done")
    panel = ExportPanel(fake.run, folder=tmp_path / "nothing")
    panel.export_button.click()
    panel.wait(30)
    assert panel.status == "error" and "no valid candidate" in panel.error_text
    assert "no valid candidate" in panel.error_area.value
    assert not (tmp_path / "nothing").exists()
    assert panel.check_button.disabled


def test_default_folder_and_css_class(synthetic):
    panel = ExportPanel(synthetic().run)
    assert panel.folder.value == os.path.join("out", "GMM")
    assert "msx-export-panel" in panel._dom_classes
    with pytest.raises(TypeError, match="expects a SearchRun"):
        ExportPanel("out/GMM")

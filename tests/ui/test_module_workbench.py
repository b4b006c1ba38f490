"""ModuleWorkbench at model level: toggles rebuild the space, module errors show where they happened, refresh."""

from __future__ import annotations

import types

import pytest

import msexplore as mx
from msexplore.ui.module_workbench import ModuleWorkbench

BUILD_TIMEOUT_S = 300  # the first Space of a process imports TVM's intrinsics


def _annotate_unroll(sch, block):
    """A user module with one random variable: an unroll step for the block."""
    step = sch.sample_categorical(candidates=[0, 16, 64], probs=[1 / 3, 1 / 3, 1 / 3])
    sch.annotate(block, "pragma_auto_unroll_max_step", step)


def _modules_in(bench: ModuleWorkbench) -> set[str]:
    return set(bench.summary["module"])


def test_toggling_modules_off_removes_their_random_variables(gmm32, target):
    mx.module(_annotate_unroll, name="wb_unroll", blocks=["Z"])
    bench = ModuleWorkbench(gmm32, modules=["default", "wb_unroll"], target=target).wait(BUILD_TIMEOUT_S)
    assert bench.status == "ok", bench.error_text
    assert "msx-module-workbench" in bench._dom_classes
    # every default module is listed (on), and the user module after them
    assert bench.available[: len(mx.default_module_names())] == mx.default_module_names()
    assert bench.enabled == [*mx.default_module_names(), "wb_unroll"]
    assert {"multi_level_tiling", "wb_unroll"} <= _modules_in(bench)
    assert [m.name for m in bench.space.modules] == bench.enabled
    assert "wb_unroll" in bench.summary_view.value and bench.figure is not None

    bench.set_enabled("wb_unroll", False)
    bench.wait(BUILD_TIMEOUT_S)
    assert "wb_unroll" not in _modules_in(bench) and "multi_level_tiling" in _modules_in(bench)
    assert "wb_unroll" not in {t.name for t in bench.figure.data}

    bench.toggles["multi_level_tiling"].value = False  # the checkbox itself
    bench.wait(BUILD_TIMEOUT_S)
    assert "multi_level_tiling" not in _modules_in(bench)
    assert "multi_level_tiling" not in [m.name for m in bench.space.modules]
    assert not any(name.startswith("Z.tile") for name in bench.summary["name"])


def test_a_module_that_raises_shows_its_error_in_its_row(gmm32, target):
    @mx.module(name="wb_broken", blocks=["Z"])
    def wb_broken(sch, block):
        raise ValueError("wb_broken cannot handle this block")

    bench = ModuleWorkbench(gmm32, modules=["multi_level_tiling", "wb_broken"], target=target)
    bench.wait(BUILD_TIMEOUT_S)
    row = bench.failure_views["wb_broken"].value
    assert "wb_broken failed on block Z" in row and "ValueError: wb_broken cannot handle this block" in row
    assert "<details>" in row and "Traceback" in row  # the traceback, folded
    assert bench.failure_views["multi_level_tiling"].value == ""
    assert "wb_broken" in bench.message and "msx-warning" in bench.status_line.value

    bench.set_enabled("wb_broken", False)  # switched off: the error goes, the space is whole again
    bench.wait(BUILD_TIMEOUT_S)
    assert bench.failure_views["wb_broken"].value == "" and bench.space.design_spaces
    assert bench.status == "ok"

    bench.set_enabled("multi_level_tiling", False)  # nothing left on: said clearly, no space
    bench.wait(BUILD_TIMEOUT_S)
    assert bench.status == "error" and "no module is switched on" in bench.error_text
    assert bench.space is None and "no module is switched on" in bench.error_area.value


def test_a_redefined_module_is_picked_up_by_refresh(gmm32, target):
    @mx.module(name="wb_tile", blocks=["Z"])
    def wb_tile(sch, block):
        _, _, j, _ = sch.get_loops(block)
        sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))

    bench = ModuleWorkbench(gmm32, modules=["wb_tile"], target=target).wait(BUILD_TIMEOUT_S)
    before = list(bench.summary["name"])
    assert len(before) == 1 and not bench.refresh(), "nothing changed: no rebuild"

    @mx.module(name="wb_tile", blocks=["Z"])  # the cell run again with another body
    def wb_tile_again(sch, block):
        _, i, j, _ = sch.get_loops(block)
        sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
        sch.split(i, sch.sample_perfect_tile(i, n=3))

    assert bench.refresh(), "same name, another module: rebuilt"
    bench.wait(BUILD_TIMEOUT_S)
    after = list(bench.summary["name"])
    assert len(after) == 2 and set(before) < set(after)
    assert bench.space.modules[0] is mx.registered_modules()["wb_tile"]

    mx.module(_annotate_unroll, name="wb_new")  # registered in another cell: listed, off
    assert not bench.refresh()
    assert "wb_new" in bench.available and "wb_new" not in bench.enabled
    mx.unregister("wb_tile")  # gone from the registry: unlisted, and the space no longer has it
    assert bench.refresh()
    assert "wb_tile" not in bench.available
    bench.wait(BUILD_TIMEOUT_S)
    assert bench.status == "error" and "no module is switched on" in bench.error_text


def test_unknown_module_names_fail_at_once(gmm32, target):
    with pytest.raises(ValueError, match="unknown module 'no_such_module'"):
        ModuleWorkbench(gmm32, modules=["no_such_module"], target=target)


def test_the_workbench_refreshes_after_every_cell(gmm32, target, monkeypatch):
    """In IPython, redefining a module in another cell is enough: the workbench checks after each cell."""
    from IPython.core.events import EventManager, available_events

    shell = types.SimpleNamespace()
    shell.events = EventManager(shell, available_events)
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)

    @mx.module(name="wb_cell", blocks=["Z"])
    def wb_cell(sch, block):
        _, _, j, _ = sch.get_loops(block)
        sch.split(j, sch.sample_perfect_tile(j, n=2))

    bench = ModuleWorkbench(gmm32, modules=["wb_cell"], target=target).wait(BUILD_TIMEOUT_S)
    assert len(bench.summary) == 1

    @mx.module(name="wb_cell", blocks=["Z"])
    def wb_cell_again(sch, block):
        _, i, j, _ = sch.get_loops(block)
        sch.split(j, sch.sample_perfect_tile(j, n=2))
        sch.split(i, sch.sample_perfect_tile(i, n=2))

    shell.events.trigger("post_run_cell", None)  # the cell that redefined it has finished
    bench.wait(BUILD_TIMEOUT_S)
    assert len(bench.summary) == 2
    bench.close()
    assert shell.events.callbacks["post_run_cell"] == [], "a closed workbench stops listening"

"""``Steering`` (the core of ``mx.ui.ChooseSchedule``) at model level, on real TVM with tiny workloads: the values
offered are the legal ones, choosing and going back, a full path that replays and exports, bad values, an untrained
model, determinism, and "finish from here" (measured: marked slow).

``ScoreModel`` scores a program by a hash of its TIR: it ranks from the start and is blind to measurements, so the
options and the beam pass of "finish from here" are deterministic.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

import msexplore as mx
from msexplore.schedules import replay_json
from msexplore.search.steering import Steering
from msexplore.traces import trace_to_json


@derived_object
class ScoreModel(PyCostModel):
    def load(self, path: str) -> None:
        pass

    def save(self, path: str) -> None:
        pass

    def update(self, context, candidates, results) -> None:
        pass

    def predict(self, context, candidates) -> np.ndarray:
        return np.array([(tvm_ffi.structural_hash(c.sch.mod) % 10007) / 10007 for c in candidates], dtype="float64")


@pytest.fixture(scope="module")
def gmm32():
    return mx.Space(mx.workload("GMM", n=32, m=32, k=32))


@pytest.fixture(scope="module")
def sfm32():
    return mx.Space(mx.workload("SFM", m=32, n=32))


def _expected_values(space, steer) -> list:
    """The legal values of the next decision, read from the space's random variables (not from the beam's slots)."""
    slot = steer.slot
    if slot.kind == "design_space":
        return list(range(len(space.design_spaces)))
    rvs = space.design_spaces[steer.design_space].by_name()
    if slot.kind == "tile":
        name, factor = slot.name[:-1].split("[")
        fixed = {int(c.slot.name[:-1].split("[")[1]): c.value for c in steer.path if c.slot.name.startswith(name + "[")}
        tilings = [t for t in rvs[name].domain if all(t[f] == v for f, v in fixed.items())]
        return sorted({t[int(factor)] for t in tilings})
    if slot.kind == "categorical":
        return list(rvs[slot.name].candidates)
    return sorted(rvs[slot.name].locations)


def _walk(steer, pick):
    """Choose ``pick(options)`` at every step; yields the options of each step before choosing."""
    while not steer.done:
        options = steer.options()
        yield options
        steer.choose(pick(options).value)


@pytest.mark.parametrize("name", ["gmm32", "sfm32"])
def test_the_values_offered_are_the_legal_ones_of_each_slot(name, request):
    space = request.getfixturevalue(name)
    steer = Steering(space, ScoreModel())
    kinds = set()
    for options in _walk(steer, lambda options: options[len(options) // 2]):
        kinds.add(steer.slot.kind)
        assert [o.value for o in options] == _expected_values(space, steer), steer.slot
        assert steer.accepted() == [o.value for o in options]
        assert sum(o.current for o in options) == 1  # the current program takes exactly one of them
        for o in options:
            assert o.valid >= 1 and o.score is not None and o.score in o.scores, o
            assert o.best >= o.worst
            assert not (o.current and o.diff)  # the current value leads to the current program
    assert steer.done and steer.options() == [] and steer.accepted() == []
    assert kinds == ({"design_space", "tile", "categorical"} if name == "gmm32" else
                     {"design_space", "tile", "compute_location", "categorical"})
    assert len(steer.path) == steer.path[0].slot.total


def test_choosing_advances_and_going_back_restores_the_previous_program_exactly(gmm32):
    steer = Steering(gmm32, ScoreModel())
    steer.choose(steer.options()[1].value)  # a design space
    before = (steer.slot, steer.options(), steer.tir, steer.decisions, steer.path)
    option = steer.options()[0]
    assert not option.current and option.diff.startswith("--- current\n+++ Z.tile_i[0] = 1")
    chosen = steer.choose(option.value)
    assert chosen == option and steer.slot.index == before[0].index + 1
    assert steer.tir == option.tir != before[2]
    assert steer.path[-1].value == option.value and steer.decisions["Z.tile_i"][0] == option.value
    changed = {k for k in before[3] if before[3][k] != steer.decisions[k]}
    assert changed == {"Z.tile_i"}  # the smallest change that takes the value: the other decisions are kept
    steer.back()
    assert (steer.slot, steer.options(), steer.tir, steer.decisions, steer.path) == before
    steer.back()
    with pytest.raises(ValueError, match="back: no decision has been taken yet"):
        steer.back()


def test_the_trace_of_a_full_path_replays_to_the_same_tir_and_exports(gmm32, tmp_path):
    steer = Steering(gmm32, ScoreModel())
    for _ in _walk(steer, lambda options: max(options, key=lambda o: o.score)):
        pass
    text = json.dumps(trace_to_json(steer.trace))
    assert replay_json(json.loads(text), gmm32.workload).mod.script() == steer.tir
    assert steer.decisions["Z.tile_i"][0] == steer.path[1].value
    bundle = steer.export(tmp_path / "steered")
    assert {"kernel.so", "trace.py", "trace.json", "manifest.json"} <= {p.name for p in bundle.path.iterdir()}
    kernel = mx.load_kernel(tmp_path / "steered")
    x, y, _ = gmm32.workload.make_inputs(seed=1)
    np.testing.assert_allclose(kernel(x, y), x @ y, rtol=1e-4, atol=1e-4)


def test_a_bad_value_is_refused_naming_the_accepted_values(gmm32):
    steer = Steering(gmm32, ScoreModel())
    with pytest.raises(ValueError, match=r"'banana' is not a legal value of design space .*accepted: \[0, 1, 2\]"):
        steer.choose("banana")
    steer.choose("design space 2")  # an option's label works too
    with pytest.raises(ValueError, match=r"choose: 3 is not a legal value of Z.tile_i\[0\] \(the outermost of the 4 "
                                         r"factors of loop i \(extent 32\)\); accepted: \[1, 2, 4, 8, 16, 32\]"):
        steer.choose(3)
    with pytest.raises(ValueError, match="is not a legal value"):
        steer.choose(True)  # not 1
    while not steer.done:
        steer.choose(steer.accepted()[0])
    with pytest.raises(ValueError, match="choose: every decision is taken"):
        steer.choose(1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cost_model": "xgb"}, TypeError, "cost_model must be run.cost_model .* got str"),
        ({"completions": 0}, ValueError, "completions must be a positive integer, got 0"),
        ({"max_children": -1}, ValueError, "max_children must be a positive integer or None, got -1"),
    ],
)
def test_bad_arguments_fail_before_any_work(gmm32, kwargs, error, match):
    with pytest.raises(error, match=match):
        Steering(gmm32, **kwargs)


def test_a_workload_is_not_a_space():
    with pytest.raises(TypeError, match="Steering steers an mx.Space, got Workload"):
        Steering(mx.workload("GMM", n=32, m=32, k=32))


def test_without_a_cost_model_the_scores_are_untrained(gmm32):
    steer = Steering(gmm32)
    assert not steer.trained and steer.predicted is None and "cost model untrained" in repr(steer)
    options = steer.options()
    assert options and all(o.score is None and o.scores == () and o.valid >= 1 and o.tir for o in options)


def test_max_children_spreads_the_values_and_any_legal_value_is_still_accepted(gmm32):
    steer = Steering(gmm32, ScoreModel(), max_children=3)
    steer.choose(0)
    assert [o.value for o in steer.options()] == [1, 8, 32]  # log-spaced over 1..32, the ends kept
    assert steer.choose(2).value == 2


def test_the_same_seed_offers_the_same_programs(gmm32):
    first, again = Steering(gmm32, ScoreModel(), seed=4), Steering(gmm32, ScoreModel(), seed=4)
    for steer in (first, again):
        steer.choose(1)
    assert first.options() == again.options()


@pytest.mark.slow
def test_finish_from_here_runs_a_beam_pass_measures_and_keeps_the_prefix(gmm32):
    steer = Steering(gmm32, ScoreModel())
    for _ in range(3):  # the design space and both outer tiles
        steer.choose(steer.options()[1].value)
    prefix = steer.path
    finished = steer.finish(trials=2, beam_size=2, max_children=3)
    assert finished.how == "beam pass" and finished.prefix == prefix and len(finished.programs) == 2
    assert all(p.measurement.ok for p in finished.programs), finished
    assert all(p.decisions["Z.tile_i"][0] == prefix[1].value for p in finished.programs)
    assert steer.done and steer.path[:3] == prefix
    fastest = min(p.measurement.latency_s for p in finished.programs)
    assert finished.best_latency_s == fastest == steer.measurement.latency_s
    assert steer.decisions == finished.programs[finished.best].decisions
    tir = steer.tir
    steer.back()  # finish added one step per decision: back walks them one at a time
    assert not steer.done and steer.tir == tir and len(steer.path) == steer.slot.total - 1


@pytest.mark.slow
def test_an_untrained_model_learns_from_what_is_measured_here(gmm32):
    steer = Steering(gmm32)  # a fresh XGB model: no scores yet
    steer.choose(0)
    finished = steer.finish(trials=2)
    assert finished.how == "random completions" and all(p.predicted is None for p in finished.programs)
    assert finished.best is not None and steer.done and steer.path[0].value == 0
    assert steer.trained and steer.predicted is not None  # trained on the two measurements
    steer.back()
    assert all(o.score is not None for o in steer.options())
    measurement = steer.measure()
    assert measurement.ok and steer.measurement is measurement

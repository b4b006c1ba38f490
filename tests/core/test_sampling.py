"""Sampling: SampleSet table, determinism (seeds, threads), validity and reasons, module failures, save/load."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.postproc import PyPostproc

import msexplore as mx
from msexplore.random_variables import perfect_tilings

DEFAULT_COLUMNS = [
    "sample", "design_space", "valid", "error", "seed",
    "Z.tile_b", "Z.tile_i", "Z.tile_j", "Z.tile_k", "root.unroll_explicit",
]


# ---- the table and the samples ---------------------------------------------------------------------------


def test_sample_table_has_one_column_per_decision(default_samples):
    df = default_samples.df
    assert list(df.columns) == DEFAULT_COLUMNS
    assert df["sample"].tolist() == list(range(40))
    assert df["valid"].all() and df["error"].isna().all()
    assert set(df["design_space"]) == {0, 1, 2}  # 40 draws visit every design space
    assert len(df.drop_duplicates(subset=DEFAULT_COLUMNS[5:])) == 40  # ~6e5 programs: no repeats
    for s, (_, row) in zip(default_samples, df.iterrows()):
        assert dict(s.decisions) == {name: row[name] for name in DEFAULT_COLUMNS[5:]}
        assert (s.id, s.seed, s.design_space, s.valid) == (row["sample"], row["seed"], row["design_space"], True)


def test_every_decision_is_legal_and_read_from_the_trace(default_space, default_samples):
    for s in default_samples:
        ds = default_space.design_spaces[s.design_space]
        insts = s.trace.insts
        for rv in ds.random_variables:
            value = s.decisions[rv.name]
            raw = s.trace.get_decision(insts[rv.position])
            if rv.kind == "tile":
                assert value in perfect_tilings(rv.extent, rv.n, rv.max_innermost_factor)
                assert math.prod(value) == rv.extent and list(value) == [int(x) for x in raw]
            else:
                assert value == rv.candidates[int(raw)]


def test_a_sample_has_trace_schedule_tir_and_python(default_samples):
    s = default_samples[3]
    kinds = [inst.kind.name for inst in s.trace.insts]
    assert "EnterPostproc" in kinds and kinds.count("SamplePerfectTile") == 4
    assert s.tir == s.schedule.mod.script()
    assert "T.parallel(" in s.tir and "Z_update" in s.tir  # postprocessed: parallel loop, decomposed reduction
    python = s.python()
    assert python == "\n".join(s.trace.as_python())
    tile_i = ", ".join(str(f) for f in s.decisions["Z.tile_i"])
    assert f"sch.sample_perfect_tile(loop=l3, n=4, max_innermost_factor=64, decision=[{tile_i}])" in python


def test_same_seed_same_samples_and_another_seed_others(default_space, default_samples):
    again = default_space.sample(40, seed=0)
    pd.testing.assert_frame_equal(again.df, default_samples.df)
    assert [s.tir for s in again[:5]] == [s.tir for s in default_samples[:5]]
    other = default_space.sample(40, seed=1)
    assert not other.df[DEFAULT_COLUMNS[5:]].equals(default_samples.df[DEFAULT_COLUMNS[5:]])


def test_sample_i_does_not_depend_on_how_many_are_drawn(default_space, default_samples):
    pd.testing.assert_frame_equal(default_space.sample(10, seed=0).df, default_samples.df.head(10))


@pytest.mark.parametrize("threads", [2, 3])
def test_thread_count_does_not_change_the_samples(default_space, threads):
    one = default_space.sample(32, seed=7, threads=1)
    many = default_space.sample(32, seed=7, threads=threads)
    pd.testing.assert_frame_equal(one.df, many.df)
    assert [s.tir for s in one] == [s.tir for s in many]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, r"n must be a positive integer, got 0"),
        ({"n": -3}, r"n must be a positive integer, got -3"),
        ({"n": 2.5}, r"n must be a positive integer, got 2.5"),
        ({"n": True}, r"n must be a positive integer, got True"),
        ({"n": "10"}, r"n must be a positive integer, got '10'"),
        ({"n": 5, "seed": -1}, r"seed must be a non-negative integer, got -1"),
        ({"n": 5, "seed": 0.5}, r"seed must be a non-negative integer, got 0.5"),
        ({"n": 5, "seed": None}, r"seed must be a non-negative integer, got None"),
        ({"n": 5, "threads": 0}, r"threads must be a positive integer or None"),
        ({"n": 5, "threads": "2"}, r"threads must be a positive integer or None"),
    ],
)
def test_bad_sample_arguments(tile_space, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_space.sample(**kwargs)


def test_sample_set_is_a_sequence(default_samples):
    assert len(default_samples) == 40 and default_samples[-1].id == 39
    head = default_samples[:5]
    assert isinstance(head, mx.SampleSet) and [s.id for s in head] == [0, 1, 2, 3, 4]
    assert head.df["sample"].tolist() == [0, 1, 2, 3, 4]
    assert repr(default_samples) == "SampleSet(40 samples, 40 valid, GMM)"
    assert len(default_samples.valid) == 40
    assert "<table" in default_samples._repr_html_()


# ---- invalid samples and broken modules ------------------------------------------------------------------


@derived_object
class RejectWideInnerTile(PyPostproc):
    """Rejects samples whose first sampled tile has an innermost factor above 4."""

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch) -> bool:
        trace = sch.trace
        first = next(inst for inst in trace.insts if inst.kind.name == "SamplePerfectTile")
        return int(trace.get_decision(first)[-1]) <= 4

    def clone(self):
        return RejectWideInnerTile()


def test_a_rejected_sample_is_invalid_with_the_postprocessors_name(gmm, target, tile_module):
    postprocs = [RejectWideInnerTile(), *ms.Postproc.create("llvm")]
    space = mx.Space(gmm, modules=[tile_module], target=target, postprocs=postprocs)
    samples = space.sample(24, seed=0)
    df = samples.df
    wide = df["Z.tile_j"].map(lambda t: t[-1] > 4)
    assert wide.any() and (~wide).any()
    assert (df["valid"] == ~wide).all()
    assert set(df.loc[wide, "error"]) == {"rejected by postprocessor RejectWideInnerTile"}
    bad = samples[int(df.index[wide][0])]
    assert bad.trace is not None and "T.grid" in bad.tir  # an invalid sample still shows what it was


@pytest.fixture(scope="module")
def half_broken_space(gmm, target):
    """A module forks the space in two; a second module breaks one branch: 1 design space + 1 failure."""

    def fork(sch, block):
        alt = sch.copy()
        _, i, _, _ = sch.get_loops(block)
        sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=8))
        return [sch, alt]

    def break_split(sch, block):
        if len(sch.get_loops(block)) == 5:
            raise ZeroDivisionError("no split loops, please")
        _, _, j, _ = sch.get_loops(block)
        sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=8))

    mods = [mx.module(fork, name="fork_t", blocks=["Z"]), mx.module(break_split, name="breaker_t", blocks=["Z"])]
    return mx.Space(gmm, modules=mods, target=target)


def test_samples_of_a_broken_branch_are_invalid_and_carry_the_failure(half_broken_space):
    space = half_broken_space
    assert [(f.module, f.block, f.error) for f in space.failures] == [
        ("breaker_t", "Z", "ZeroDivisionError: no split loops, please")
    ]
    samples = space.sample(16, seed=0)
    broken = [s for s in samples if not s.valid]
    fine = [s for s in samples if s.valid]
    assert broken and fine  # the other design space still samples
    for s in broken:
        assert (s.design_space, s.trace, dict(s.decisions)) == (-1, None, {})
        assert s.module_failure is space.failures[0]
        assert s.error == "module 'breaker_t' failed on block 'Z': ZeroDivisionError: no split loops, please"
    with pytest.raises(ValueError, match=r"sample \d+ has no schedule: module 'breaker_t' failed on block 'Z'"):
        broken[0].tir
    assert all(set(s.decisions) == {"Z.tile_j"} for s in fine)
    assert samples.df.loc[~samples.df["valid"], "Z.tile_j"].isna().all()


def test_a_space_where_every_branch_fails_cannot_sample(gmm, target):
    def broken(sch, block):
        raise KeyError("missing")

    space = mx.Space(gmm, modules=["multi_level_tiling", mx.module(broken, blocks=["Z"])], target=target)
    with pytest.raises(mx.SpaceError, match=r"(?s)no design space: every branch failed.*"
                       r"module 'broken' failed on block 'Z': KeyError: 'missing'"):
        space.sample(5)


# ---- save and load ---------------------------------------------------------------------------------------


def assert_same_samples(loaded: mx.SampleSet, saved: mx.SampleSet) -> None:
    pd.testing.assert_frame_equal(loaded.df, saved.df)
    for a, b in zip(loaded, saved):
        assert (a.id, a.seed, a.design_space, a.valid, a.error) == (b.id, b.seed, b.design_space, b.valid, b.error)
        assert dict(a.decisions) == dict(b.decisions)
        if b.trace is None:
            assert a.trace is None and a.module_failure == b.module_failure
        else:
            assert a.python() == b.python()
            assert a.tir == b.tir


def test_save_then_load_round_trips_exactly(default_space, default_samples, tmp_path):
    path = tmp_path / "gmm_samples.jsonl"
    default_samples.save(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 41 and list(tmp_path.iterdir()) == [path]  # header + samples, no temp file left
    header = json.loads(lines[0])
    assert {k: header[k] for k in ("format", "version", "seed", "modules")} == {
        "format": "msexplore.samples", "version": 1, "seed": 0, "modules": [m.name for m in default_space.modules]
    }
    loaded = mx.SampleSet.load(path, default_space)
    assert loaded.load_errors == [] and loaded.seed == 0
    assert_same_samples(loaded, default_samples)


def test_save_then_load_keeps_failures_and_rejections(half_broken_space, tmp_path):
    samples = half_broken_space.sample(16, seed=3)
    assert not samples.df["valid"].all()
    samples.save(tmp_path / "s.jsonl")
    assert_same_samples(mx.SampleSet.load(tmp_path / "s.jsonl", half_broken_space), samples)


def test_malformed_lines_are_skipped_with_a_warning_naming_them(tile_space, tile_samples, tmp_path):
    path = tmp_path / "s.jsonl"
    tile_samples[:6].save(path)
    lines = path.read_text().splitlines()
    lines[2] = "{not json"  # line 3
    tampered = json.loads(lines[4])  # line 5: a decision that disagrees with the trace
    tampered["decisions"]["Z.tile_j"] = [1, 64]
    lines[4] = json.dumps(tampered)
    dropped = json.loads(lines[5])  # line 6: a field missing
    del dropped["trace"]
    lines[5] = json.dumps(dropped)
    path.write_text("\n".join(lines) + "\n")

    with pytest.warns(UserWarning, match=r"3 malformed line\(s\) skipped in .*s.jsonl:\n.*s.jsonl:3: "):
        loaded = mx.SampleSet.load(path, tile_space)
    assert [s.id for s in loaded] == [0, 2, 5]
    assert len(loaded.load_errors) == 3
    assert loaded.load_errors[0].startswith(f"{path}:3: JSONDecodeError: ")
    assert loaded.load_errors[1] == f"{path}:5: ValueError: decisions ['Z.tile_j'] do not match the sample's trace"
    assert loaded.load_errors[2] == f"{path}:6: ValueError: missing field(s) ['trace']"
    assert_same_samples(loaded, mx.SampleSet(tile_space, [tile_samples[i] for i in (0, 2, 5)], seed=0))


def test_samples_of_another_workload_are_refused(tile_samples, tile_module, target, tmp_path):
    tile_samples.save(tmp_path / "s.jsonl")
    other = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=[tile_module], target=target)
    with pytest.raises(ValueError, match=r"the samples are of workload 'GMM' .*64.*, not of this space's "
                       r"Workload\(GMM b=1 n=32 m=32 k=32"):
        mx.SampleSet.load(tmp_path / "s.jsonl", other)


def test_samples_of_other_modules_are_refused(tile_samples, gmm, target, tmp_path):
    tile_samples.save(tmp_path / "s.jsonl")
    other = mx.Space(gmm, modules=["multi_level_tiling"], target=target)
    with pytest.raises(ValueError, match=r"drawn from a space with modules \['tv_session'\], not this space's "
                       r"\['multi_level_tiling'\]; build the space with the same modules"):
        mx.SampleSet.load(tmp_path / "s.jsonl", other)


def test_a_trace_of_another_design_space_is_a_bad_line(default_space, default_samples, tmp_path):
    path = tmp_path / "s.jsonl"
    default_samples[:2].save(path)
    lines = path.read_text().splitlines()
    sample = json.loads(lines[1])
    sample["design_space"] = (sample["design_space"] + 1) % 3
    lines[1] = json.dumps(sample)
    path.write_text("\n".join(lines))
    with pytest.warns(UserWarning, match=r"1 malformed line"):
        loaded = mx.SampleSet.load(path, default_space)
    assert loaded.load_errors == [
        f"{path}:2: ValueError: its trace is not a sample of design space {sample['design_space']} of this space"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty file, not a samples file written by SampleSet.save"),
        ("hello\n", r":1: not a samples file header"),
        ('{"format": "something else"}\n', r":1: not a samples file \(expected format 'msexplore.samples'\)"),
        ("[1, 2]\n", r":1: not a samples file"),
    ],
)
def test_files_that_are_not_samples_files(tile_space, tmp_path, text, message):
    path = tmp_path / "s.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        mx.SampleSet.load(path, tile_space)

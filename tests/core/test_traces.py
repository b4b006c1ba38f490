"""Trace tools: instruction table, JSON round trip, diff, decision edits with replay, golden printouts."""

from __future__ import annotations

import json
import re

import pytest

import msexplore as mx

_FOR = re.compile(r"^\s*for (?P<names>[\w, ]+?) in (?P<kind>T\.grid|T\.\w+|range)\((?P<args>[^)]*)\)")


def loop_extents(tir: str) -> dict[str, int]:
    """Loop variable -> extent, read from the printed TIR (``for a, b in T.grid(2, 3)``, ``T.vectorized(8)``...)."""
    out = {}
    for line in tir.splitlines():
        m = _FOR.match(line)
        if m:
            names = [n.strip() for n in m["names"].split(",")]
            args = [a.strip() for a in m["args"].split(",")]
            for name, extent in zip(names, args if m["kind"] == "T.grid" else args[:1]):
                out[name] = int(extent)
    return out


def first_sample(samples: mx.SampleSet, predicate) -> mx.Sample:
    return next(s for s in samples if predicate(s))


# ---- instruction table -----------------------------------------------------------------------------------

TABLE_COLUMNS = [
    "index", "kind", "inputs", "attrs", "outputs", "decision", "random_variable", "module", "block", "postproc"
]


def test_instruction_table(tile_samples):
    s = tile_samples[3]
    table = mx.instruction_table(s)
    assert list(table.columns) == TABLE_COLUMNS
    assert table.equals(s.instructions())
    assert table["kind"].tolist() == [inst.kind.name for inst in s.trace.insts]
    assert table[["kind", "inputs", "attrs", "outputs"]].head(9).values.tolist() == [
        ["GetSBlock", "", "Z, main", "b0"],
        ["GetSBlock", "", "root, main", "b1"],
        ["GetLoops", "b0", "", "l2, l3, l4, l5"],
        ["SamplePerfectTile", "l4", "2, 16", "v6, v7"],
        ["Split", "l4, v6, v7", "True, False", "l8, l9"],
        ["SamplePerfectTile", "l3", "2, 8", "v10, v11"],
        ["Split", "l3, v10, v11", "True, False", "l12, l13"],
        ["Reorder", "l12, l8, l5, l13, l9", "", ""],
        ["Vectorize", "l9", "", ""],
    ]
    rvs = table.dropna(subset=["random_variable"])
    assert rvs[["index", "random_variable", "module", "block"]].values.tolist() == [
        [3, "Z.tile_j", "tv_session", "Z"],
        [5, "Z.tile_i", "tv_session", "Z"],
    ]
    assert rvs["decision"].tolist() == [s.decisions["Z.tile_j"], s.decisions["Z.tile_i"]]  # tuples, as in df
    enter = table.index[table["kind"] == "EnterPostproc"][0]
    assert not table["postproc"][:enter].any() and table["postproc"][enter:].all()
    assert table["decision"].notna().sum() == 2


def test_instruction_table_of_a_sample_without_trace(gmm, target):
    def broken(sch, block):
        raise ValueError("nope")

    space = mx.Space(gmm, modules=["multi_level_tiling", mx.module(broken, blocks=["Z"])], target=target)
    failure = space.failures[0]
    sample = mx.Sample(0, 1, -1, False, str(failure), {}, None, space, module_failure=failure)  # as sample() makes
    with pytest.raises(ValueError, match=r"sample 0 has no trace: module 'broken' failed on block 'Z': ValueError"):
        mx.instruction_table(sample)


# ---- JSON round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "tile"])
def test_trace_json_round_trip(which, default_space, default_samples, tile_space, tile_samples):
    space, samples = (default_space, default_samples) if which == "default" else (tile_space, tile_samples)
    for s in samples[:8]:
        data = mx.trace_to_json(s.trace)
        text = json.dumps(data)  # plain JSON: no IntImm/FloatImm left
        back = mx.trace_from_json(json.loads(text), space, seed=s.seed)
        assert back.as_python() == s.trace.as_python()
        assert str(back) == str(s.trace)  # printing a reloaded trace works (tvm.ir.load_json's segfaults)
        assert json.dumps(mx.trace_to_json(back)) == text
        assert [back.get_decision(i) for i in back.insts] == [s.trace.get_decision(i) for i in s.trace.insts]
        replayed = mx.Sample(s.id, s.seed, s.design_space, True, None, s.decisions, back, space)
        assert replayed.tir == s.tir


def test_trace_from_json_rejects_what_is_not_a_trace_of_the_workload(default_samples, tile_space, target):
    with pytest.raises(ValueError, match=r"a trace in JSON is \[instructions, decisions\] as trace_to_json writes"):
        mx.trace_from_json("b0 = sch.get_sblock('Z')", tile_space)
    with pytest.raises(ValueError, match=r"does not replay on workload GMM: .*NoSuchKind is not registered"):
        mx.trace_from_json([[["NoSuchKind", [], [], []]], []], tile_space)
    softmax = mx.Space(mx.workload("SFM", m=8, n=8), modules=["auto_inline"], target=target)
    with pytest.raises(ValueError, match=r"does not replay on workload SFM: ScheduleError: Cannot find a block"):
        mx.trace_from_json(mx.trace_to_json(default_samples[0].trace), softmax)


# ---- diff ------------------------------------------------------------------------------------------------


def test_diff_lists_the_decisions_that_differ_and_diffs_the_tir(default_samples):
    a, b = default_samples[3], default_samples[5]
    d = mx.diff(a, b)
    differing = [n for n in a.decisions if a.decisions[n] != b.decisions[n]]
    assert differing  # two random draws from ~6e5 programs
    assert d.decisions.values.tolist() == [[n, a.decisions[n], b.decisions[n]] for n in differing]
    assert d.tir.startswith("--- sample 3\n+++ sample 5\n@@ ")
    removed = {ln[1:] for ln in d.tir.splitlines() if ln.startswith("-") and not ln.startswith("---")}
    added = {ln[1:] for ln in d.tir.splitlines() if ln.startswith("+") and not ln.startswith("+++")}
    assert removed <= set(a.tir.splitlines()) and added <= set(b.tir.splitlines()) and removed != added
    text = str(d)
    assert text.startswith(f"sample 3 and sample 5: {len(differing)} decision(s) differ\n")
    assert f"  {differing[0]}: {a.decisions[differing[0]]} -> {b.decisions[differing[0]]}" in text


def test_diff_of_a_sample_with_itself_is_empty(default_samples):
    d = mx.diff(default_samples[2], default_samples[2])
    assert d.decisions.empty and d.tir == ""
    assert str(d) == "sample 2 and sample 2: 0 decision(s) differ\n"


def test_diff_names_an_edited_sample(tile_samples):
    s = tile_samples[0]
    new_j = [8, 8] if s.decisions["Z.tile_j"] != (8, 8) else [16, 4]
    d = mx.diff(s, s.with_decisions({"Z.tile_j": new_j}))
    assert d.tir.startswith("--- sample 0\n+++ sample 0 (edited Z.tile_j)\n")
    assert d.decisions.values.tolist() == [["Z.tile_j", s.decisions["Z.tile_j"], tuple(new_j)]]


# ---- with_decisions --------------------------------------------------------------------------------------


def test_with_decisions_changes_the_tir_and_keeps_the_rest(tile_samples):
    s = first_sample(tile_samples, lambda s: s.decisions["Z.tile_j"] != (8, 8))
    before = dict(s.decisions)
    t = s.with_decisions({"Z.tile_j": [8, 8]})
    assert t.decisions == {"Z.tile_j": (8, 8), "Z.tile_i": before["Z.tile_i"]}
    assert (t.id, t.seed, t.design_space, t.valid, t.edited) == (s.id, s.seed, s.design_space, True, ("Z.tile_j",))
    extents = loop_extents(t.tir)
    assert (extents["j_0"], extents["j_1"]) == (8, 8)  # the split factors are the loop extents
    assert (extents["i_0"], extents["i_1"]) == before["Z.tile_i"]
    assert loop_extents(s.tir)["j_1"] == before["Z.tile_j"][1]
    assert dict(s.decisions) == before and s.edited == ()  # the original is untouched
    assert "decision=[8, 8]" in t.python()
    twice = t.with_decisions({"Z.tile_i": (8, 8)})
    assert twice.decisions == {"Z.tile_j": (8, 8), "Z.tile_i": (8, 8)} and twice.edited == ("Z.tile_j", "Z.tile_i")


def test_with_decisions_on_the_default_space(default_samples):
    s = first_sample(default_samples, lambda s: s.decisions["Z.tile_k"] != (8, 8))
    t = s.with_decisions({"Z.tile_k": [8, 8], "root.unroll_explicit": 16})
    assert t.decisions == {**s.decisions, "Z.tile_k": (8, 8), "root.unroll_explicit": 16}
    extents = loop_extents(t.tir)
    assert (extents["k_0"], extents["k_1"]) == (8, 8)
    assert '"pragma_auto_unroll_max_step": 16' in t.tir


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Z.tile_j": [2, 32]}, r"Z.tile_j: [2, 32] is not a legal tiling of loop 'j' (extent 64, 2 factors, "
         r"innermost <= 16); legal values: [[4, 16], [8, 8], [16, 4], [32, 2], [64, 1]]"),
        ({"Z.tile_j": [3, 21]}, r"Z.tile_j: [3, 21] is not a legal tiling of loop 'j'"),
        ({"Z.tile_j": [64]}, r"Z.tile_j: [64] is not a legal tiling"),
        ({"Z.tile_j": 5}, r"Z.tile_j: a tile decision is a list of 2 factors, got 5"),
        ({"Z.tile_q": [8, 8]},
         r"unknown decision(s) ['Z.tile_q']; this sample's decisions are ['Z.tile_j', 'Z.tile_i']"),
        ({}, r"changes must be a non-empty {decision name: value} mapping"),
        ([("Z.tile_j", [8, 8])], r"changes must be a non-empty {decision name: value} mapping"),
    ],
)
def test_with_decisions_rejects_illegal_values_listing_the_legal_ones(tile_samples, changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tile_samples[0].with_decisions(changes)


def test_illegal_values_of_large_domains_and_categoricals(default_samples):
    s = default_samples[0]
    with pytest.raises(ValueError, match=r"Z.tile_i: \[3, 1, 1, 1\] is not a legal tiling .* \(84 in all\)"):
        s.with_decisions({"Z.tile_i": [3, 1, 1, 1]})
    candidates = "root.unroll_explicit: 32 is not one of the candidates [0, 16, 64, 512]"
    with pytest.raises(ValueError, match=re.escape(candidates)):
        s.with_decisions({"root.unroll_explicit": 32})
    # every problem at once
    with pytest.raises(ValueError, match=r"Z.tile_k: .*; root.unroll_explicit: 7 is not one of"):
        s.with_decisions({"Z.tile_k": [5, 5], "root.unroll_explicit": 7})


def test_a_change_that_makes_a_later_tile_illegal_is_refused(gmm, target):
    def tile_innermost(sch, block):
        loop = sch.get_loops(block)[-1]
        sch.split(loop, sch.sample_perfect_tile(loop, n=2, max_innermost_factor=4))

    inner = mx.module(tile_innermost, name="inner_split", blocks=["Z"])
    space = mx.Space(gmm, modules=["multi_level_tiling", inner], target=target)
    samples = space.sample(32, seed=0)
    s = first_sample(samples, lambda s: s.decisions["Z.tile_j"][-1] > 1 and s.decisions["Z.tile_j_3"] != (1, 1))
    # j's innermost tile becomes 1: the split of that loop (TVM would silently "repair" it) must change too
    with pytest.raises(ValueError, match=re.escape(
        f"Z.tile_j_3: its value {list(s.decisions['Z.tile_j_3'])} no longer tiles loop 'j_3' (extent 1 after this "
        "change); change it too, to one of [[1, 1]]"
    )):
        s.with_decisions({"Z.tile_j": [64, 1, 1, 1]})
    t = s.with_decisions({"Z.tile_j": [64, 1, 1, 1], "Z.tile_j_3": [1, 1]})
    assert t.decisions == {**s.decisions, "Z.tile_j": (64, 1, 1, 1), "Z.tile_j_3": (1, 1)}


def top_level_loops(tir: str) -> int:
    return sum(1 for line in tir.splitlines() if re.match(r"^ {8}for ", line))


def test_with_decisions_on_compute_locations(matmul_relu, target):
    def locate(sch, block):
        sch.compute_at(block, sch.sample_compute_location(block))

    space = mx.Space(mx.workload(matmul_relu), modules=[mx.module(locate, blocks=["matmul"])], target=target)
    s = first_sample(space.sample(16, seed=0), lambda s: s.decisions["matmul.compute_location"] != -1)
    at_root = s.with_decisions({"matmul.compute_location": -1})
    assert at_root.decisions == {"matmul.compute_location": -1}
    assert (top_level_loops(s.tir), top_level_loops(at_root.tir)) == (1, 2)  # under relu's loops / its own nest
    with pytest.raises(ValueError, match=re.escape(
        "matmul.compute_location: -2 is not a legal compute location; legal: [-1, 0, 1] "
        "(-1 = root, -2 = inline, k = under the k-th loop)"
    )):
        s.with_decisions({"matmul.compute_location": -2})


def test_with_decisions_on_a_loaded_sample(tile_space, tile_samples, tmp_path):
    tile_samples[:3].save(tmp_path / "s.jsonl")
    loaded = mx.SampleSet.load(tmp_path / "s.jsonl", tile_space)[1]
    t = loaded.with_decisions({"Z.tile_i": [64, 1]})
    assert t.decisions == {"Z.tile_j": tile_samples[1].decisions["Z.tile_j"], "Z.tile_i": (64, 1)}
    assert t.tir == tile_samples[1].with_decisions({"Z.tile_i": [64, 1]}).tir


def test_with_decisions_needs_a_trace(gmm, target):
    def breaker(sch, block):
        if len(sch.get_loops(block)) == 4:
            raise RuntimeError("only the untiled branch breaks")

    def fork(sch, block):
        alt = sch.copy()
        loop = sch.get_loops(block)[1]
        sch.split(loop, sch.sample_perfect_tile(loop, n=2, max_innermost_factor=8))
        return [sch, alt]

    mods = [mx.module(fork, blocks=["Z"]), mx.module(breaker, blocks=["Z"])]
    samples = mx.Space(gmm, modules=mods, target=target).sample(8, seed=0)
    broken = first_sample(samples, lambda s: not s.valid)
    with pytest.raises(ValueError, match=r"sample \d+ has no trace to edit: module 'breaker' failed on block 'Z'"):
        broken.with_decisions({"Z.tile_i": [8, 8]})


def test_a_value_that_breaks_a_later_instruction_is_reported(gmm, target):
    def zero_or_two(sch, block):
        loop = sch.get_loops(block)[1]
        sch.split(loop, [sch.sample_categorical([2, 0], [0.5, 0.5]), None])

    # Space seed 1 draws 2 while the design space is generated, so the space exists; factor 0 cannot replay
    space = mx.Space(gmm, modules=[mx.module(zero_or_two, blocks=["Z"])], target=target, seed=1)
    samples = space.sample(16, seed=0)
    failed = samples.df[~samples.df["valid"]]
    assert len(failed) and set(failed["error"]) == {
        "replay failed: ScheduleError: All the constant factors are required to be positive. "
        "However, some constant input factor is zero or negative."
    }
    good = first_sample(samples, lambda s: s.valid)
    with pytest.raises(ValueError, match=r"sample \d+ with \{'Z.split_arg': 0\} does not replay: ScheduleError: "
                       r"All the constant factors are required to be positive"):
        good.with_decisions({"Z.split_arg": 0})


# ---- golden printouts ------------------------------------------------------------------------------------


def test_golden_default_sample(default_samples, golden):
    s = default_samples[3]
    golden("gmm64_default_sample3.tir.txt", s.tir)
    golden("gmm64_default_sample3.trace.txt", s.python() + "\n")


def test_golden_tile_and_vectorize_sample(tile_samples, golden):
    s = tile_samples[3]
    golden("gmm64_tile_and_vectorize_sample3.tir.txt", s.tir)
    golden("gmm64_tile_and_vectorize_sample3.trace.txt", s.python() + "\n")


def test_golden_decisions_table(default_samples, golden):
    df = default_samples.df.drop(columns=["error"])
    golden("gmm64_default_samples_seed0.csv", df.to_csv(index=False))

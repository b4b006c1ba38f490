"""Spaces: design spaces, their random variables (names, attribution, domains), summary, errors, quiet TVM."""

from __future__ import annotations

import itertools
import logging
import math

import pandas as pd
import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

import msexplore as mx
from msexplore.random_variables import perfect_tilings

SUMMARY_COLUMNS = ["name", "module", "block", "kind", "loop", "extent", "domain_size", "domain", "design_spaces"]


def tile_innermost(sch, block):
    """Split whatever loop is innermost: its extent depends on the decisions of the modules before."""
    loop = sch.get_loops(block)[-1]
    sch.split(loop, sch.sample_perfect_tile(loop, n=2, max_innermost_factor=4))


def records(summary) -> list[dict]:
    """Rows as plain Python values (numpy scalars unwrapped, <NA> as None)."""
    rows = summary.astype(object).where(summary.notna(), None).to_dict("records")
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in rows]


# ---- summary ---------------------------------------------------------------------------------------------


def test_summary_of_a_one_module_space_exactly(tile_space):
    summary = tile_space.summary()
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert records(summary) == [
        {"name": "Z.tile_j", "module": "tv_session", "block": "Z", "kind": "tile", "loop": "j", "extent": 64,
         "domain_size": 5, "domain": "2 factors of 64, innermost <= 16", "design_spaces": [0]},
        {"name": "Z.tile_i", "module": "tv_session", "block": "Z", "kind": "tile", "loop": "i", "extent": 64,
         "domain_size": 4, "domain": "2 factors of 64, innermost <= 8", "design_spaces": [0]},
    ]
    assert summary.attrs == {"size": 5 * 4, "failures": []}
    assert tile_space.size() == 20 and len(tile_space.design_spaces) == 1


def test_summary_of_the_default_space_exactly(default_space):
    summary = default_space.summary()
    assert str(summary["extent"].dtype) == "Int64"  # whole numbers, <NA> where a variable has no loop
    rows = summary.astype(object).where(summary.notna(), None)
    assert rows.values.tolist() == [
        ["Z.tile_b", "multi_level_tiling", "Z", "tile", "b", 1, 1, "4 factors of 1, innermost <= 64", [0, 1, 2]],
        ["Z.tile_i", "multi_level_tiling", "Z", "tile", "i", 64, 84, "4 factors of 64, innermost <= 64", [0, 1, 2]],
        ["Z.tile_j", "multi_level_tiling", "Z", "tile", "j", 64, 84, "4 factors of 64, innermost <= 64", [0, 1, 2]],
        ["Z.tile_k", "multi_level_tiling", "Z", "tile", "k", 64, 7, "2 factors of 64, innermost <= 64", [0, 1, 2]],
        ["root.unroll_explicit", "parallelize_vectorize_unroll", "root", "categorical", None, None, 4,
         "[0, 16, 64, 512]", [0, 1, 2]],
    ]
    assert default_space.size() == 3 * (1 * 84 * 84 * 7 * 4)
    assert repr(default_space).startswith("Space(GMM, 3 design space(s), 15 random variables, ~5.93e+05 programs")


def test_random_variables_carry_their_domain(default_space):
    by_name = default_space.design_spaces[0].by_name()
    tile_k, unroll = by_name["Z.tile_k"], by_name["root.unroll_explicit"]
    assert (tile_k.n, tile_k.max_innermost_factor, tile_k.extent) == (2, 64, 64)
    assert tile_k.domain == [[1, 64], [2, 32], [4, 16], [8, 8], [16, 4], [32, 2], [64, 1]]
    assert (unroll.candidates, unroll.probs, unroll.domain) == ((0, 16, 64, 512), (0.25,) * 4, [0, 16, 64, 512])
    # positions point at the sampling instructions of the design-space trace
    insts = default_space.design_spaces[0].trace.insts
    assert insts[tile_k.position].kind.name == "SamplePerfectTile"
    assert insts[unroll.position].kind.name == "SampleCategorical"


def brute_force_tilings(extent: int, n: int, limit: int) -> list[tuple[int, ...]]:
    divisors = [d for d in range(1, extent + 1) if extent % d == 0]
    return [
        t for t in itertools.product(divisors, repeat=n) if math.prod(t) == extent and (limit <= 0 or t[-1] <= limit)
    ]


@pytest.mark.parametrize(("extent", "n", "limit"), [(64, 2, 16), (64, 4, 64), (12, 3, 0), (1, 4, 64), (96, 3, 8)])
def test_perfect_tilings_are_every_ordered_factorization(extent, n, limit):
    assert sorted(perfect_tilings(extent, n, limit)) == sorted(brute_force_tilings(extent, n, limit))


def test_domain_sizes_of_known_cases():
    assert perfect_tilings(64, 2, 16) == ((4, 16), (8, 8), (16, 4), (32, 2), (64, 1))
    assert len(perfect_tilings(64, 4, 64)) == 84  # 2^6 into 4 ordered factors: C(9, 3)
    assert len(perfect_tilings(12, 2, 0)) == 6  # no limit: one tiling per divisor
    assert perfect_tilings(7, 2, 4) == ((7, 1),)


# ---- attribution and names -------------------------------------------------------------------------------


def test_random_variables_are_attributed_to_the_module_and_block_that_made_them(gmm, target):
    inner = mx.module(tile_innermost, name="inner_split", blocks=["Z"])
    space = mx.Space(gmm, modules=["default", inner], target=target)
    for ds in space.design_spaces:
        got = {rv.name: (rv.module, rv.block, rv.kind) for rv in ds.random_variables}
        assert got == {
            "Z.tile_b": ("multi_level_tiling", "Z", "tile"),
            "Z.tile_i": ("multi_level_tiling", "Z", "tile"),
            "Z.tile_j": ("multi_level_tiling", "Z", "tile"),
            "Z.tile_k": ("multi_level_tiling", "Z", "tile"),
            "Z.tile_j_3": ("inner_split", "Z", "tile"),  # the innermost loop after 4-level tiling of j
            "root.unroll_explicit": ("parallelize_vectorize_unroll", "root", "categorical"),
        }


def test_describing_a_space_is_deterministic(gmm, target):
    """The extent of a loop made by an earlier split depends on that split: read it with the space's decisions."""
    inner = mx.module(tile_innermost, name="inner_split", blocks=["Z"])
    spaces = [mx.Space(gmm, modules=["multi_level_tiling", inner], target=target) for _ in range(8)]
    summaries = [s.summary() for s in spaces]
    for other in summaries[1:]:  # replayed with fresh random decisions, 8 builds gave extents 1, 4 and 32
        pd.testing.assert_frame_equal(other, summaries[0])
    extents = {ds.by_name()["Z.tile_j_3"].extent for ds in spaces[0].design_spaces}
    assert extents <= {1, 2, 4, 8, 16, 32, 64}


def test_a_second_variable_on_the_same_loop_gets_a_numbered_name(gmm, target):
    def twice(sch, block):
        _, i, _, _ = sch.get_loops(block)
        sch.sample_perfect_tile(i, n=2, max_innermost_factor=8)
        sch.sample_perfect_tile(i, n=3, max_innermost_factor=8)

    space = mx.Space(gmm, modules=[mx.module(twice, blocks=["Z"])], target=target)
    assert space.summary()["name"].tolist() == ["Z.tile_i", "Z.tile_i#2"]


def test_compute_location_variables_list_the_legal_locations(matmul_relu, target):
    def locate(sch, block):
        sch.compute_at(block, sch.sample_compute_location(block))

    space = mx.Space(mx.workload(matmul_relu), modules=[mx.module(locate, blocks=["matmul"])], target=target)
    assert records(space.summary()) == [
        {"name": "matmul.compute_location", "module": "locate", "block": "matmul", "kind": "compute_location",
         "loop": None, "extent": None, "domain_size": 3, "domain": "[-1, 0, 1]", "design_spaces": [0]},
    ]  # root, under relu's i, under relu's j; a reduction cannot be inlined (-2)
    samples = space.sample(24, seed=1)
    assert set(samples.df["matmul.compute_location"]) == {-1, 0, 1}
    assert samples.df["valid"].all()


# ---- structure, lookup, arguments ------------------------------------------------------------------------


def test_design_space_of_recognises_samples_and_rejects_strangers(default_space, default_samples, tile_samples):
    for s in default_samples:
        assert default_space.design_space_of(s.trace).index == s.design_space
    assert default_space.design_space_of(tile_samples[0].trace) is None


def test_the_design_space_traces_have_no_decisions_and_differ(default_space):
    for ds in default_space.design_spaces:
        assert len(ds.trace.decisions) == 0
        # the trace as Python, with the parallel extent left open (a search's MutateParallel changes it)
        python = [line.replace('"meta_schedule.parallel", ann_val=32', '"meta_schedule.parallel", ann_val=*')
                  for line in ds.trace.as_python()]
        assert ds.signature == tuple(python) and "ann_val=*" in "".join(ds.signature)
    # two of the three differ only in where the cache-write block goes: their signatures tell them apart
    assert len({ds.signature for ds in default_space.design_spaces}) == 3
    assert len({tuple(i.kind.name for i in ds.trace.insts) for ds in default_space.design_spaces}) == 2


def test_postprocessors_and_mutators(default_space, gmm, target):
    assert default_space.postproc_names == [
        "DisallowDynamicLoop", "RewriteParallelVectorizeUnroll", "RewriteReductionBlock", "RewriteLayout"
    ]
    assert sorted(type(m).__name__ for m in default_space.mutator_probs) == [
        "MutateComputeLocation", "MutateParallel", "MutateTileSize", "MutateUnroll"
    ]
    bare = mx.Space(gmm, modules=["multi_level_tiling"], target=target, postprocs=[], mutators={})
    assert bare.postprocs == [] and bare.mutator_probs == {}
    assert isinstance(default_space.space_generator(), ms.space_generator.PostOrderApply)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seed": -1}, ValueError, r"seed must be an integer in 0\.\.2147483646, got -1"),
        ({"seed": 1.5}, ValueError, r"seed must be an integer"),
        ({"postprocs": "llvm"}, ValueError, r"postprocs must be 'default' or a list of postprocessors, got 'llvm'"),
        ({"postprocs": [42]}, TypeError, r"postprocs must be 'default' or a list of MetaSchedule postprocessors"
         r".*got list of int"),
        ({"mutators": "none"}, ValueError, r"mutators must be 'default' or a \{mutator: probability\} dict"),
        ({"mutators": {"MutateTileSize": 1.0}}, TypeError, r"mutators must be 'default' or a \{ms.Mutator: "
         r"probability\} dict with probabilities >= 0, got \{str: 1.0\}"),
        ({"target": 3}, TypeError, r"target must be None \(the host CPU\), a dict"),
    ],
)
def test_bad_space_arguments(gmm, kwargs, error, message):
    with pytest.raises(error, match=message):
        mx.Space(gmm, modules=["default"], **kwargs)


def test_workload_may_be_given_as_anything_mx_workload_takes(matmul_relu, target):
    space = mx.Space(matmul_relu, modules=["multi_level_tiling"], target=target)
    assert space.workload.name == "matmul_relu"
    assert [rv.name for rv in space.design_spaces[0].random_variables] == [
        "matmul.tile_i", "matmul.tile_j", "matmul.tile_k"
    ]


def test_a_space_without_design_spaces_explains_itself(gmm, target):
    def broken(sch, block):
        raise RuntimeError("half-written cell")

    space = mx.Space(gmm, modules=[mx.module(broken, blocks=["Z"])], target=target)
    with pytest.raises(mx.SpaceError, match=r"(?s)the space for GMM has no design space: every branch failed.\n"
                       r"  - module 'broken' failed on block 'Z': RuntimeError: half-written cell\n"
                       r"Fix the module\(s\) above \(space.failures\[i\].traceback has the full traceback\)"):
        space.require_design_spaces()
    assert space.summary().empty and space.size() == 0


def test_building_a_space_keeps_tvm_quiet(default_space, gmm, target, capfd):
    assert logging.getLogger("tvm.s_tir.meta_schedule").level == logging.WARNING
    assert tvm.get_global_func("s_tir.meta_schedule.using_ipython")() is False
    capfd.readouterr()
    mx.Space(gmm, modules=["default"], target=target).sample(20, seed=0, threads=2)
    assert capfd.readouterr() == ("", "")  # nothing on the process's stdout/stderr, C++ side included

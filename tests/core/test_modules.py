"""Transformation modules: the decorator, the registry keyed by name, default modules, applicability, failures."""

from __future__ import annotations

import pytest
from tvm.s_tir import Schedule

import msexplore as mx
from msexplore.modules import resolve_modules

LLVM_DEFAULTS = [
    "apply_custom_rule",
    "inline_constant_scalars",
    "auto_inline",
    "add_r_factor",
    "multi_level_tiling",
    "parallelize_vectorize_unroll",
    "random_compute_location",
]


def tile_j(sch, block):
    _, _, j, _ = sch.get_loops(block)
    sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))


def unroll_choice(sch, block):
    choice = sch.sample_categorical([0, 16, 64], [0.5, 0.25, 0.25])
    sch.annotate(block, "pragma_auto_unroll_max_step", choice)


def rv_names(space: mx.Space) -> list[str]:
    return [rv.name for ds in space.design_spaces for rv in ds.random_variables]


# ---- the decorator and the registry ----------------------------------------------------------------------


def test_decorator_registers_the_function_under_its_name():
    @mx.module
    def cell_a(sch, block):
        """Does nothing, in place."""

    assert isinstance(cell_a, mx.TransformModule)
    assert (cell_a.name, cell_a.scope, cell_a.blocks, cell_a.when, cell_a.doc) == (
        "cell_a", "block", None, None, "Does nothing, in place."
    )
    assert not cell_a.is_default
    assert mx.registered_modules()["cell_a"] is cell_a


def test_decorator_options():
    def only_big(sch, block):
        return True

    @mx.module(name="renamed", blocks="Z", when=only_big)
    def cell_b(sch, block):
        return [sch]

    assert cell_b.name == "renamed" and cell_b.blocks == ("Z",) and cell_b.when is only_big
    assert "renamed" in mx.registered_modules() and "cell_b" not in mx.registered_modules()


def test_a_module_can_be_called_on_a_hand_made_schedule(gmm, tile_module):
    sch = Schedule(gmm.mod, seed=3)
    out = tile_module(sch, sch.get_sblock("Z"))
    assert out == [sch]
    assert [int(sch.get(loop).extent) for loop in sch.get_loops(sch.get_sblock("Z"))][:1] == [1]
    assert [inst.kind.name for inst in sch.trace.insts].count("SamplePerfectTile") == 2


def test_redefining_a_module_replaces_it_and_new_spaces_use_the_new_one(gmm, target):
    first = mx.module(tile_j, name="cell", blocks=["Z"])  # the cell runs once...
    space_before = mx.Space(gmm, modules=["cell"], target=target)
    second = mx.module(unroll_choice, name="cell")  # ...then is edited and re-run

    assert mx.registered_modules()["cell"] is second
    assert [m.fn for m in resolve_modules(["cell"])] == [unroll_choice]
    # the first object, still held by a variable of the notebook, also resolves to the new definition
    assert [m.fn for m in resolve_modules([first])] == [unroll_choice]

    space_after = mx.Space(gmm, modules=[first], target=target)
    assert rv_names(space_before) == ["Z.tile_j"]
    # unroll_choice applies to every compute block (the root block only when blocks= names it)
    assert rv_names(space_after) == ["Z.pragma_auto_unroll_max_step"]
    assert {rv.module for ds in space_after.design_spaces for rv in ds.random_variables} == {"cell"}
    assert space_before.modules[0].fn is tile_j  # a space already built keeps what it was built with


def test_unregister():
    mx.module(tile_j, name="gone")
    mx.unregister("gone")
    assert "gone" not in mx.registered_modules()
    with pytest.raises(KeyError, match=r"no module named 'gone'; registered: \["):
        mx.unregister("gone")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scope": "loop"}, ValueError, r"scope must be one of \['block', 'program'\], got 'loop'"),
        ({"scope": "program", "blocks": ["Z"]}, ValueError, r"program-scope module .* takes no blocks= or when="),
        ({"blocks": []}, ValueError, r"blocks must be a non-empty list of block names"),
        ({"blocks": ["Z", 3]}, ValueError, r"blocks must be a non-empty list of block names"),
        ({"name": "default"}, ValueError, r"'default' is the name of a default module; choose another name"),
        ({"name": "multi_level_tiling"}, ValueError, r"'multi_level_tiling' is the name of a default module"),
        ({"name": "auto_bind"}, ValueError, r"'auto_bind' is the name of a default module"),  # a cuda default
        ({"name": "2fast"}, ValueError, r"a module name must be an identifier-like string, got '2fast'; name it "
         r"with @mx.module\(name='...'\)"),
    ],
)
def test_bad_decorator_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        mx.module(tile_j, **kwargs)


def test_a_lambda_needs_a_name():
    with pytest.raises(ValueError, match=r"got '<lambda>'; name it with @mx.module\(name='...'\)"):
        mx.module(lambda sch, block: None)
    assert mx.module(lambda sch, block: None, name="anon").name == "anon"


def test_decorating_something_that_is_not_a_function():
    with pytest.raises(TypeError, match=r"@module expects a function, got int"):
        mx.module(name="x")(42)


def test_a_default_module_has_no_python_function():
    default = resolve_modules(["auto_inline"])[0]
    assert default.is_default and default.default_kind == "llvm"
    with pytest.raises(TypeError, match=r"'auto_inline' is one of TVM's default rules"):
        default(None, None)


# ---- default modules and resolving module lists ----------------------------------------------------------


def test_default_module_names_are_tvms_rules_in_order():
    assert mx.default_module_names() == LLVM_DEFAULTS
    assert mx.default_module_names("cuda") == [
        "apply_custom_rule",
        "multi_level_tiling",
        "inline_constant_scalars",
        "auto_inline",
        "cross_thread_reduction",
        "parallelize_vectorize_unroll",
        "auto_bind",
    ]
    with pytest.raises(ValueError, match=r"no default modules for target kind 'c'; use 'llvm' or 'cuda'"):
        mx.default_module_names("c")


def test_default_expands_to_every_default_module(tile_module):
    mods = resolve_modules(["default", tile_module])
    assert [m.name for m in mods] == [*LLVM_DEFAULTS, "tv_session"]
    assert [m.is_default for m in mods] == [True] * 7 + [False]
    assert [m.name for m in resolve_modules("multi_level_tiling")] == ["multi_level_tiling"]  # one name, no list


@pytest.mark.parametrize(
    ("specs", "error", "message"),
    [
        (["default", "nosuch"], ValueError, r"unknown module 'nosuch'; accepted: 'default', the default modules "
         r"\['apply_custom_rule', .*'random_compute_location'\], or a registered module \[.*'tv_session'.*\]"),
        ([tile_j], TypeError, r"module 'tile_j' is a plain function; decorate it with @mx.module"),
        ([3], TypeError, r"a module is a name or an @mx.module function, got int"),
        (["default", "auto_inline"], ValueError, r"modules listed more than once: \['auto_inline'\]"),
        ([], ValueError, r"a space needs at least one module, e.g. modules=\['default'\]"),
    ],
)
def test_bad_module_lists(tile_module, specs, error, message):
    with pytest.raises(error, match=message):
        resolve_modules(specs)


def test_space_rejects_bad_modules_before_any_work(gmm, target):
    with pytest.raises(ValueError, match=r"unknown module 'tile_and_vectorise'; accepted: 'default'"):
        mx.Space(gmm, modules=["default", "tile_and_vectorise"], target=target)
    with pytest.raises(TypeError, match=r"'tile_j' is a plain function; decorate it with @mx.module"):
        mx.Space(gmm, modules=["default", tile_j], target=target)


# ---- what modules do inside a space ----------------------------------------------------------------------


def test_dropping_a_default_module_and_adding_ones_own(gmm, target):
    without_tiling = [n for n in mx.default_module_names() if n != "multi_level_tiling"]
    my_tiling = mx.module(tile_j, name="my_tiling", blocks=["Z"])
    space = mx.Space(gmm, modules=[*without_tiling, my_tiling], target=target)
    summary = space.summary()
    assert summary[["name", "module"]].values.tolist() == [
        ["root.unroll_explicit", "parallelize_vectorize_unroll"],
        ["Z.tile_j", "my_tiling"],
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["Z.tile_j"]),
        ({"blocks": ["Z"]}, ["Z.tile_j"]),
        ({"blocks": ["nosuch"]}, []),
        ({"when": lambda sch, block: sch.get(block).name_hint == "Z"}, ["Z.tile_j"]),
        ({"when": lambda sch, block: False}, []),
    ],
)
def test_applicability(gmm, target, options, expected):
    def tile_j_where_possible(sch, block):
        if len(sch.get_loops(block)) == 4:  # the root block has no loops
            tile_j(sch, block)

    space = mx.Space(gmm, modules=[mx.module(tile_j_where_possible, name="picky", **options)], target=target)
    assert rv_names(space) == expected
    assert not space.failures


def test_program_scope_runs_once_per_design_space_and_names_the_tiled_block(gmm, target):
    calls = []

    @mx.module(scope="program")
    def whole(sch):
        calls.append(len(sch.trace.insts))
        outer = sch.get_loops(sch.get_sblock("Z"))[0]
        sch.split(outer, sch.sample_perfect_tile(outer, n=2, max_innermost_factor=4))

    space = mx.Space(gmm, modules=["multi_level_tiling", whole], target=target)
    assert len(calls) == len(space.design_spaces) == 3
    for ds in space.design_spaces:
        rv = ds.by_name()["Z.tile_b_0"]  # the outermost loop after multi-level tiling, split again
        assert (rv.module, rv.block, rv.max_innermost_factor) == ("whole", "Z", 4)


def test_returning_a_schedule_none_or_several(gmm, target):
    @mx.module
    def returns_schedule(sch, block):
        return sch

    @mx.module
    def returns_none(sch, block):
        return None

    @mx.module(blocks=["Z"])
    def forks(sch, block):
        alt = sch.copy()
        tile_j(alt, block)
        return [sch, alt]

    assert len(mx.Space(gmm, modules=[returns_schedule, returns_none], target=target).design_spaces) == 1
    forked = mx.Space(gmm, modules=[forks], target=target)
    assert sorted(len(ds.random_variables) for ds in forked.design_spaces) == [0, 1]


def test_a_module_that_raises_is_recorded_with_name_block_and_traceback(gmm, target):
    @mx.module(blocks=["Z"])
    def divides_by_zero(sch, block):
        return 1 // 0

    space = mx.Space(gmm, modules=["multi_level_tiling", divides_by_zero], target=target)
    assert len(space.failures) == 3 and not space.design_spaces  # one per branch multi-level tiling made
    failure = space.failures[0]
    assert (failure.module, failure.block) == ("divides_by_zero", "Z")
    assert failure.error == "ZeroDivisionError: integer division or modulo by zero"
    assert "in divides_by_zero" in failure.traceback and "return 1 // 0" in failure.traceback
    assert str(failure) == (
        "module 'divides_by_zero' failed on block 'Z': ZeroDivisionError: integer division or modulo by zero"
    )
    assert "3 module failure(s)" in repr(space)


@pytest.mark.parametrize(
    ("result", "got"),
    [(42, "int"), ("sch", "str"), ([None], "list of NoneType"), ("mixed", "list of Schedule, int")],
)
def test_a_module_returning_the_wrong_type_names_itself_and_what_is_accepted(gmm, target, result, got):
    @mx.module(blocks=["Z"])
    def wrong_type(sch, block):
        return [sch, 1] if result == "mixed" else result

    space = mx.Space(gmm, modules=[wrong_type], target=target)
    assert [f.error for f in space.failures] == [
        f"TypeError: module 'wrong_type' returned {got}; a module returns a list of Schedules, a Schedule, or None"
    ]


def test_a_tvm_error_inside_a_module_is_reported_by_its_sentence(gmm, target):
    @mx.module(blocks=["Z"])
    def zero_split(sch, block):
        sch.split(sch.get_loops(block)[1], [0, None])

    space = mx.Space(gmm, modules=[zero_split], target=target)
    assert [f.error for f in space.failures] == [
        "ScheduleError: All the constant factors are required to be positive. However, the factor at position 0 is 0"
    ]


# ---- modules backed by a MetaSchedule rule, with postprocessors, requirements and an order -------------------


def _tiling_rule():
    from tvm.s_tir import meta_schedule as ms

    return ms.schedule_rule.MultiLevelTiling(structure="SRS", max_innermost_factor=8)


def test_a_metaschedule_rule_as_a_module_gets_its_variables_attributed(gmm, target):
    mx.module(name="my_rule_tiling", rule=_tiling_rule(), doc="SRS tiling by MetaSchedule's own rule")
    space = mx.Space(gmm, modules=["my_rule_tiling"], target=target)
    summary = space.summary()
    assert set(summary["module"]) == {"my_rule_tiling"} and "Z.tile_i" in set(summary["name"])
    assert set(summary["domain"]) >= {"2 factors of 64, innermost <= 8"}
    mod = mx.registered_modules()["my_rule_tiling"]
    assert mod.doc == "SRS tiling by MetaSchedule's own rule" and mod.make_rule() is not mod.rule


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rule": "tiling"}, TypeError, r"rule must be an ms.ScheduleRule \(e.g. MultiLevelTilingWithIntrin\), "
         r"got str"),
        ({"postprocs": ["RewriteTensorize"]}, TypeError, r"postprocs must be a list of MetaSchedule postprocessors"),
        ({"requires": "avx512"}, TypeError, r"requires must be a function \(target\) -> str \| None, got str"),
        ({"before": [3]}, ValueError, r"before must be a list of module names, got \(3,\)"),
    ],
)
def test_bad_rule_module_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        mx.module(name="bad_rule_module", **{"rule": _tiling_rule(), **kwargs})


def test_a_module_is_a_function_or_a_rule_not_both():
    with pytest.raises(ValueError, match=r"a module is a function or a MetaSchedule rule \(rule=\), not both"):
        mx.module(tile_j, name="both", rule=_tiling_rule())


def test_before_moves_a_module_ahead_of_the_modules_it_names(tile_module):
    early = mx.module(tile_j, name="early", before=["multi_level_tiling", "tv_session"])
    names = [m.name for m in resolve_modules(["default", tile_module, early])]
    assert names == [*LLVM_DEFAULTS[:4], "early", *LLVM_DEFAULTS[4:], "tv_session"]
    assert [m.name for m in resolve_modules([early, "multi_level_tiling"])] == ["early", "multi_level_tiling"]


def test_module_postprocessors_run_after_the_spaces_own_once_each(gmm, target):
    from tvm.s_tir import meta_schedule as ms

    from msexplore.hardware.vnni import UnrollTensorizedVectorLoops  # harmless here: nothing is tensorized

    first = mx.module(tile_j, name="needs_a", blocks=["Z"], postprocs=[UnrollTensorizedVectorLoops(),
                                                                       ms.postproc.RewriteTensorize()])
    second = mx.module(unroll_choice, name="needs_b", blocks=["Z"], postprocs=[ms.postproc.RewriteTensorize()])
    space = mx.Space(gmm, modules=[first, second], target=target)  # "default" postprocessors, then theirs
    defaults = ["DisallowDynamicLoop", "RewriteParallelVectorizeUnroll", "RewriteReductionBlock", "RewriteLayout"]
    assert space.postproc_names == [*defaults, "UnrollTensorizedVectorLoops", "RewriteTensorize"]
    assert len(space.postprocs) == 6 and len(space.sample(4, seed=0).valid) == 4
    # a list of one's own keeps its order; what a module needs and lacks goes before its later ones already there
    own = mx.Space(gmm, modules=[first], target=target, postprocs=[ms.postproc.RewriteTensorize()])
    assert own.postproc_names == ["UnrollTensorizedVectorLoops", "RewriteTensorize"]


def test_a_module_whose_target_requirement_fails_refuses_the_space_before_any_work(gmm, target):
    calls = []

    def needs_gpu(t):
        calls.append(t.kind.name)
        return None if t.kind.name == "cuda" else "it tiles for a GPU; use a cuda target"

    mx.module(tile_j, name="gpu_only", requires=needs_gpu)
    with pytest.raises(mx.ModuleNotApplicable, match=r"module 'gpu_only' does not apply to the target \{.*\}: it "
                       r"tiles for a GPU; use a cuda target"):
        mx.Space(gmm, modules=["default", "gpu_only"], target=target)
    assert calls == ["llvm"]


def test_a_rule_module_that_changes_nothing_warns(gmm, target):
    from tvm.s_tir import meta_schedule as ms

    mx.module(name="idle_rule", rule=ms.schedule_rule.AutoInline(
        into_producer=False, into_consumer=True, inline_const_tensor=True, disallow_if_then_else=True,
        require_injective=True, require_ordered=True, disallow_op=None), doc="Inlines elementwise blocks.")
    with pytest.warns(UserWarning, match=r"module 'idle_rule' changed no block of GMM: Inlines elementwise blocks."):
        mx.Space(gmm, modules=["default", "idle_rule"], target=target)

"""``"x86-vnni"``: int8 dot products on AVX-512 VNNI (``vpdpbusd``), as a module of a search space.

``mx.Space(workload, modules=["default", "x86-vnni"])`` adds to the default space a multi-level tiling whose
innermost tile is one ``vpdpbusd``: 16 int32 sums, each of 4 u8 x s8 products (``u8 x s8 -> s32`` blocks
only, e.g. the workloads ``DENSE_U8S8`` and ``C2D_U8S8``). It is TVM's own VNNI recipe with two fixes that
TVM 0.27 with its bundled LLVM 22 needs:

1. the intrinsic: TVM's ``dot_16x4_vnni`` passes ``<16 x i32>`` operands to ``llvm.x86.avx512.vpdpbusd.512``,
   which LLVM 22 rejects ("Call parameter type does not match function signature"); the one here has the same
   description and hands the instruction ``<64 x u8>`` and ``<64 x i8>``, reinterpreted in registers;
2. a postprocessor: the default ``RewriteParallelVectorizeUnroll`` may vectorize a tile loop around the
   block to be tensorized, and vectorizing what is vector code already fails ("Cannot broadcast lanes=16 ...
   to 64"); ``UnrollTensorizedVectorLoops`` unrolls such a loop instead (without it, 5 of 8 samples of the
   int8 dense failed to compile; with it, none).

Reading order, as for any hardware module: the intrinsic (what one instruction computes and how to emit it),
what the target must have, the postprocessor, and the ``mx.module`` call that puts them together.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.postproc import PyPostproc
from tvm.s_tir.meta_schedule.schedule_rule import MultiLevelTilingWithIntrin, ReuseType
from tvm.script import tirx as T

from ..modules import module

__all__ = [
    "INTRIN_NAME", "MODULE_NAME", "VNNI", "VNNI_CPUS", "UnrollTensorizedVectorLoops", "missing_vnni",
    "unroll_vector_loops_around_tensorized_blocks",
]

MODULE_NAME = "x86-vnni"
INTRIN_NAME = "msexplore_dot_16x4_u8i8i32_vnni"  # not TVM's "dot_16x4_vnni", which this wheel cannot compile
FEATURE = "avx512vnni"  # LLVM's name of the CPU feature
# LLVM CPU names (mcpu) with AVX-512 VNNI, for messages; the check itself asks LLVM about the target.
VNNI_CPUS = ("cascadelake", "cooperlake", "icelake-server", "sapphirerapids", "znver4", "znver5")


# ---- 1. the intrinsic: what one vpdpbusd computes, and how to emit it -----------------------------------------


@T.prim_func(s_tir=True)
def dot_16x4_desc(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1),
) -> None:
    # TVM's dot_product_16x4_u8i8i32_desc: C[i] += sum_k A[k] * B[i, k], exactly (no saturation)
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        for i in T.serial(0, 16):
            for k in T.serial(0, 4):
                with T.sblock("update"):
                    vi, vk = T.axis.remap("SR", [i, k])
                    C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")


@T.prim_func(s_tir=True)
def dot_16x4_vpdpbusd(
    A: T.Buffer((4,), "uint8", offset_factor=1),
    B: T.Buffer((16, 4), "int8", offset_factor=1),
    C: T.Buffer((16,), "int32", offset_factor=1),
) -> None:
    with T.sblock("root"):
        T.reads(C[0:16], A[0:4], B[0:16, 0:4])
        T.writes(C[0:16])
        # the 4 bytes of A as one int32, repeated 16 times, seen as 64 u8 lanes: one group of 4 per output
        a_u8x64 = T.reinterpret(T.broadcast(T.reinterpret(A.vload([0], "uint8x4"), dtype="int32"), 16),
                                dtype="uint8x64")
        C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
            T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
            C.vload([0], dtype="int32x16"),
            a_u8x64,  # LLVM 22's signature: <16 x i32> accumulator, <64 x u8>, <64 x i8>
            B.vload([0, 0], dtype="int8x64"),
            dtype="int32x16",
        )


def register_intrinsic() -> str:
    """Register the corrected intrinsic under ``INTRIN_NAME`` (again: it replaces) and return the name.

    Done on import, so traces that tensorize with it replay in any process that imports msexplore.
    """
    tvm.s_tir.TensorIntrin.register(INTRIN_NAME, dot_16x4_desc, dot_16x4_vpdpbusd, override=True)
    return INTRIN_NAME


register_intrinsic()


# ---- 2. what the target must have ------------------------------------------------------------------------------


def missing_vnni(target: tvm.target.Target) -> str | None:
    """None when ``target`` can run ``vpdpbusd``; otherwise what it lacks and which targets have it."""
    from tvm.target.codegen import target_has_features

    if target.kind.name == "llvm" and target_has_features(FEATURE, target):
        return None
    cpu = target.attrs.get("mcpu", "") if target.kind.name == "llvm" else target.kind.name
    return (
        f"it needs the x86 CPU feature {FEATURE} (AVX-512 VNNI), which {cpu or 'this target'} does not have; "
        f"targets that have it: an llvm target with mcpu in {list(VNNI_CPUS)} (or mattr ['+{FEATURE}'])"
    )


# ---- 3. the postprocessor that keeps tensorized loops legal --------------------------------------------------

AUTO_TENSORIZE = "meta_schedule.auto_tensorize"  # the mark MultiLevelTilingWithIntrin leaves on a block


@derived_object
class UnrollTensorizedVectorLoops(PyPostproc):
    """Unroll, instead of vectorize, every vectorized loop around a block marked for tensorization.

    Run it before ``RewriteTensorize``: the default ``RewriteParallelVectorizeUnroll`` vectorizes the innermost
    tile loops of every block, but a tensorized block is vector code already (16-lane loads, stores and a
    call), and vectorizing it again fails in code generation.
    """

    def _initialize_with_tune_context(self, context: Any) -> None:
        pass

    def apply(self, sch: tvm.s_tir.Schedule) -> bool:
        unroll_vector_loops_around_tensorized_blocks(sch)
        return True

    def clone(self) -> UnrollTensorizedVectorLoops:
        return UnrollTensorizedVectorLoops()


def unroll_vector_loops_around_tensorized_blocks(sch: tvm.s_tir.Schedule) -> None:
    """What ``UnrollTensorizedVectorLoops`` does: no vectorized loop is left around a block to be tensorized.

    Nor around its initialisation (a copy of the same tile loops): the only vectorized loop near the instruction is
    then the init's innermost 16 lanes, which ``RewriteTensorize`` vectorizes itself, nested in no other. A
    vectorized loop around vector code is what TVM's vectorizer warns about ("Detect vectorize inside vectorized
    loop") before it fails to widen the 16 lanes again ("Cannot broadcast"); ``tests/core/test_vnni.py`` checks
    the TIR of the samples for it.
    """
    for block in _all_blocks(sch):
        if AUTO_TENSORIZE in sch.get(block).annotations:
            for loop in sch.get_loops(block):
                if sch.get(loop).kind == tvm.tirx.ForKind.VECTORIZED:
                    sch.unroll(loop)


def _all_blocks(sch: tvm.s_tir.Schedule) -> list[Any]:
    blocks, todo = [], [sch.get_sblock("root")]
    while todo:
        children = sch.get_child_blocks(todo.pop())
        blocks += children
        todo += children
    return blocks


# ---- 4. the module: the rule, its postprocessors, its requirement -------------------------------------------

VNNI = module(
    name=MODULE_NAME,
    # tile u8 x s8 -> s32 reductions so that their innermost 16x4 tile is one vpdpbusd (TVM's CPU recipe)
    rule=MultiLevelTilingWithIntrin(
        INTRIN_NAME,
        structure="SSRSRS",  # spatial and reduction tile levels around the tensorized tile, as TVM does on CPU
        tile_binds=None,
        max_innermost_factor=64,
        vector_load_lens=None,
        reuse_read=None,
        reuse_write=ReuseType(req="may", levels=[1, 2], scope="global"),  # accumulate in a local tile, or not
    ),
    # in this order, after the space's own postprocessors (RewriteParallelVectorizeUnroll, ...)
    postprocs=[UnrollTensorizedVectorLoops(), ms.postproc.RewriteTensorize(vectorize_init_loop=True)],
    requires=missing_vnni,
    before=["multi_level_tiling"],  # else the generic tiling tiles the int8 block first and nothing is left
    doc="int8 dot products on AVX-512 VNNI: u8 x s8 -> s32 reductions tiled so their innermost 16x4 tile is "
    "one vpdpbusd (e.g. DENSE_U8S8, C2D_U8S8)",
)

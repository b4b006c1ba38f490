"""Names and groups of MetaSchedule's ``PerStoreFeature`` features (TVM 0.27, default settings: 164 per store).

``PerStoreFeature`` gives one row per buffer store of a scheduled program (``BufferStore`` statements whose value is
not a constant), in this order (``src/s_tir/meta_schedule/feature_extractor/per_store_feature.cc``):

- group 1 (57): arithmetic op counts of the stored value times the loop nest's iterations (7 float, 7 integer,
  bool and select), then for vectorized, unrolled and parallel loops: how many, the product of their extents,
  the innermost one's extent and a one-hot position (TVM always reports ``none`` or ``mixed``), then GPU
  thread extents;
- group 2 (90): for up to 5 buffers the store touches (sorted by cache lines touched, then bytes, then name;
  zero-padded): access type, bytes and cache lines touched (total and unique), reuse type, distance and count,
  the same four amounts per reuse, and the innermost stride;
- group 3 (10): the arithmetic intensity curve (FLOPs per unique byte, sampled from the innermost loop out);
- group 4 (4): the allocation of the stored buffer, if the program allocates it;
- group 5 (3): the loop nest around the store: iterations, depth, ``pragma_auto_unroll_max_step``.

Every count is scaled as ``log2(x + 1)``; one-hot values are 0 or 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FEATURE_GROUPS", "FEATURE_NAMES", "FEATURE_GROUP_OF", "N_FEATURES", "feature_table", "feature_frame"]

# group name -> what it measures; the order is the order of first appearance in the feature vector
FEATURE_GROUPS: dict[str, str] = {
    "float_ops": "float ops in the stored value x loop iterations: mad, add/sub, mul, div/mod, cmp, math/other calls",
    "int_ops": "integer ops in the stored value x loop iterations: mad, add/sub, mul, div/mod, cmp, math/other calls",
    "bool_select_ops": "boolean (and/or/not) and select ops x loop iterations",
    "vectorize": "vectorized loops around the store: count, product of extents, innermost extent, position (one-hot)",
    "unroll": "unrolled loops around the store: count, product of extents, innermost extent, position (one-hot)",
    "parallel": "parallel loops around the store: count, product of extents, innermost extent, position (one-hot)",
    "gpu_threads": "is_gpu, then the extents bound to blockIdx.x/y/z, threadIdx.x/y/z and vthread (GPU targets only)",
    "buffer_access_type": "per buffer (5 slots): read, write or read-write (one-hot)",
    "buffer_touched": "per buffer: bytes, unique bytes, cache lines and unique cache lines touched",
    "buffer_reuse": "per buffer: reuse type (loop-invariant read, serial read-write, none; one-hot), reuse distance "
    "in iterations and bytes, reuse count",
    "buffer_touched_per_reuse": "per buffer: bytes, unique bytes, lines and unique lines divided by the reuse count",
    "buffer_stride": "per buffer: stride of the innermost loop's access",
    "arith_intensity_curve": "FLOPs per unique byte touched, sampled at 10 points from the innermost loop outwards",
    "allocation": "allocation of the stored buffer: size in bytes, size x outer iterations, outer and inner iterations",
    "outer_loops": "loop nest around the store: product of extents, number of loops, pragma_auto_unroll_max_step",
}

_OPS = ["mad", "add_sub", "mul", "div_mod", "cmp", "math_func", "other_func"]
_POSITIONS = ["none", "inner_spatial", "middle_spatial", "outer_spatial", "inner_reduce", "middle_reduce",
              "outer_reduce", "mixed"]
_THREADS = ["blockIdx_x_len", "blockIdx_y_len", "blockIdx_z_len", "threadIdx_x_len", "threadIdx_y_len",
            "threadIdx_z_len", "vthread_len"]
_BUFFER = [  # (name, group) of the 18 features of one buffer slot, in TVM's order
    ("access_read", "buffer_access_type"), ("access_write", "buffer_access_type"),
    ("access_read_write", "buffer_access_type"),
    ("bytes", "buffer_touched"), ("unique_bytes", "buffer_touched"), ("lines", "buffer_touched"),
    ("unique_lines", "buffer_touched"),
    ("reuse_loop_multiple_read", "buffer_reuse"), ("reuse_serial_multiple_read_write", "buffer_reuse"),
    ("reuse_none", "buffer_reuse"), ("reuse_dis_iter", "buffer_reuse"), ("reuse_dis_bytes", "buffer_reuse"),
    ("reuse_ct", "buffer_reuse"),
    ("bytes_d_reuse_ct", "buffer_touched_per_reuse"), ("unique_bytes_d_reuse_ct", "buffer_touched_per_reuse"),
    ("lines_d_reuse_ct", "buffer_touched_per_reuse"), ("unique_lines_d_reuse_ct", "buffer_touched_per_reuse"),
    ("stride", "buffer_stride"),
]
BUFFERS_PER_STORE = 5
CURVE_SAMPLES = 10


def _layout() -> list[tuple[str, str]]:
    out = [(f"float_{op}", "float_ops") for op in _OPS]
    out += [(f"int_{op}", "int_ops") for op in _OPS]
    out += [("bool_op", "bool_select_ops"), ("select_op", "bool_select_ops")]
    for kind in ("vectorize", "unroll", "parallel"):
        out += [(f"{kind}.num", kind), (f"{kind}.prod", kind), (f"{kind}.len", kind)]
        out += [(f"{kind}.pos_{p}", kind) for p in _POSITIONS]
    out += [("is_gpu", "gpu_threads")] + [(t, "gpu_threads") for t in _THREADS]
    for slot in range(BUFFERS_PER_STORE):
        out += [(f"buf{slot}.{name}", group) for name, group in _BUFFER]
    out += [(f"arith_intensity_curve_{i}", "arith_intensity_curve") for i in range(CURVE_SAMPLES)]
    out += [(n, "allocation") for n in ("alloc_size", "alloc_prod", "alloc_outer_prod", "alloc_inner_prod")]
    out += [(n, "outer_loops") for n in ("outer_prod", "num_loops", "auto_unroll_max_step")]
    return out


FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in _layout())
FEATURE_GROUP_OF: tuple[str, ...] = tuple(group for _, group in _layout())
N_FEATURES = len(FEATURE_NAMES)  # 164, PerStoreFeature().feature_vector_length with its defaults


def feature_table() -> pd.DataFrame:
    """One row per feature: its index in the vector, name and group."""
    return pd.DataFrame({"index": range(N_FEATURES), "name": FEATURE_NAMES, "group": FEATURE_GROUP_OF})


def feature_frame(features: list[np.ndarray]) -> pd.DataFrame:
    """Per-candidate feature matrices -> one row per (candidate, store) with one named column per feature."""
    matrices = [np.reshape(f, (-1, N_FEATURES)) for f in features]  # a program without stores has shape (0, 164)
    df = pd.DataFrame(np.concatenate([np.zeros((0, N_FEATURES)), *matrices]), columns=list(FEATURE_NAMES))
    df.insert(0, "store", np.concatenate([np.zeros(0, int), *(np.arange(len(m)) for m in matrices)]))
    df.insert(0, "candidate", np.concatenate([np.zeros(0, int), *(np.full(len(m), i) for i, m in enumerate(matrices))]))
    return df

"""The named operator set of the Ansor/MetaSchedule papers, built from TVM's ``te_workload.CONFIGS``.

Each operator's parameters are the integer parameters of its TE builder, lower-cased; the defaults are
the first shape of ``CONFIGS`` (GMM: the third, n=m=k=512), then the builder's own defaults.

=====  ==============================  ==============================================================
name   operator                        parameters (defaults)
=====  ==============================  ==============================================================
GMM    batched matmul Z=X@Y            b=1 n=512 m=512 k=512
C1D    conv1d, NLC                     n=1 l=256 ci=64 co=128 kernel_size=3 stride=2 padding=1
                                       dilation=1 groups=1
C2D    conv2d, NHWC                    n=1 h=224 w=224 ci=3 co=64 kernel_size=7 stride=2 padding=3
                                       dilation=1 groups=1
C3D    conv3d, NDHWC                   n=1 d=16 h=224 w=224 ci=3 co=64 kernel_size=7 stride=2
                                       padding=3 dilation=1 groups=1
DEP    depthwise conv2d, NHWC          n=1 h=112 w=112 c=32 kernel_size=3 stride=1 padding=1
                                       dilation=1 factor=1 (TVM supports factor=1 only)
DIL    dilated conv2d, NHWC            as C2D, dilation=2
GRP    grouped conv2d, NHWC            n=1 h=56 w=56 ci=64 co=128 kernel_size=3 stride=2 padding=1
                                       dilation=1 groups=4
T2D    transposed conv2d, NHWC         n=1 h=4 w=4 ci=512 co=256 kernel_size=4 stride=2 padding=1
CAP    capsule conv2d, NHWIJC          n=1 h=16 w=16 ci=32 co=32 kernel_size=3 stride=2 padding=1
                                       capsule_size=4
NRM    2-norm per batch                b=1 m=256 n=256
SFM    softmax over rows               m=256 n=256
CBR    conv2d+bias+batchnorm+relu      n=1 h=224 w=224 ci=3 co=64 kernel_size=7 strides=2 padding=3
                                       dilation=1
TBG    transpose + batched matmul      batch=1 seq_len=128 n_head=12 n_dim=64
=====  ==============================  ==============================================================

Beside the paper's set, two int8 operators (u8 data x s8 weights, summed in int32), with the weights packed
the way 16x4 int8 dot-product instructions (AVX-512 VNNI's ``vpdpbusd``) read them: 16 output channels x 4
reduction elements contiguous. They are named for what they compute, not for an instruction set: the default
space schedules them too, which is the comparison that matters (see the hardware module ``"x86-vnni"``).

==========  ==============================================  ========================================
name        operator                                        parameters (defaults)
==========  ==============================================  ========================================
DENSE_U8S8  C[m,n] = A[m,k] x W[n,k], W packed as           m=128 n=768 k=768 (n % 16 == 0,
            B[n/16, k/4, 16, 4]; u8 x s8 -> s32              k % 4 == 0)
C2D_U8S8    conv2d NCHW4c data, OIHW16o4i kernel            n=1 h=56 w=56 ci=64 co=64 kernel_size=3
            B[co/16, ci/4, kh, kw, 16, 4] -> NCHW16c s32     stride=1 padding=1 (ci % 4, co % 16 == 0)
==========  ==============================================  ========================================

``padding`` may be 0; every other parameter must be a positive integer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from tvm import te, tirx
from tvm.s_tir.meta_schedule.testing import te_workload

from ..common import check_non_negative_int, check_positive_int

# Paper order. C2D_WIN_NHWC (also in CONFIGS) is left out: its topi path raises "LEGACY-FLOW triggered".
PAPER_NAMES = ("GMM", "C1D", "C2D", "C3D", "DEP", "DIL", "GRP", "T2D", "CAP", "NRM", "SFM", "CBR", "TBG")
INT8_NAMES = ("DENSE_U8S8", "C2D_U8S8")
OPERATOR_NAMES = PAPER_NAMES + INT8_NAMES

_DESCRIPTIONS = {
    "GMM": "batched matmul",
    "C1D": "conv1d (NLC)",
    "C2D": "conv2d (NHWC)",
    "C3D": "conv3d (NDHWC)",
    "DEP": "depthwise conv2d (NHWC)",
    "DIL": "dilated conv2d (NHWC)",
    "GRP": "grouped conv2d (NHWC)",
    "T2D": "transposed conv2d (NHWC)",
    "CAP": "capsule conv2d (NHWIJC)",
    "NRM": "2-norm",
    "SFM": "softmax",
    "CBR": "conv2d + bias + batchnorm + relu",
    "TBG": "transpose + batched matmul",
    "DENSE_U8S8": "int8 dense, weights packed 16x4 (u8 x s8 -> s32)",
    "C2D_U8S8": "int8 conv2d (NCHW4c data, OIHW16o4i kernel, u8 x s8 -> s32)",
}
_DEFAULT_CONFIG_INDEX = {"GMM": 2}  # GMM: 512^3, a size where scheduling matters; the others: CONFIGS[0]
_MAY_BE_ZERO = frozenset({"padding"})
_DTYPE_PARAMS = frozenset({"in_dtype", "out_dtype"})


@dataclass(frozen=True)
class Operator:
    """One named operator: its TE builder and its shape parameters with their defaults (in builder order)."""

    name: str
    description: str
    builder: Callable[..., tuple[te.Tensor, ...]]
    defaults: dict[str, int]
    builder_names: dict[str, str]  # lower-case parameter -> the builder's own spelling (``N``, ``kernel_size``)

    def signature(self) -> str:
        """``b=1 n=512 m=512 k=512``: the parameters and their defaults, for messages."""
        return " ".join(f"{key}={value}" for key, value in self.defaults.items())


def _make_operator(name: str) -> Operator:
    builder, configs = te_workload.CONFIGS[name]
    config = configs[_DEFAULT_CONFIG_INDEX.get(name, 0)]
    defaults: dict[str, int] = {}
    builder_names: dict[str, str] = {}
    for position, param in enumerate(inspect.signature(builder).parameters.values()):
        if param.name in _DTYPE_PARAMS:
            continue
        value = config[position] if position < len(config) else param.default
        defaults[param.name.lower()] = int(value)
        builder_names[param.name.lower()] = param.name
    return Operator(name, _DESCRIPTIONS[name], builder, defaults, builder_names)


# ---- the int8 operators (TE, in the layouts a 16x4 dot-product instruction reads) ----------------------------

LANES, GROUP = 16, 4  # a 16x4 dot product: 16 int32 outputs, each the sum of 4 u8 x s8 products


def dense_u8s8(m: int = 128, n: int = 768, k: int = 768) -> tuple[te.Tensor, ...]:
    """``C[i, j] = sum_r A[i, r] * W[j, r]`` with ``W`` stored packed as ``B[j/16, r/4, j%16, r%4]``."""
    a = te.placeholder((m, k), "uint8", name="A")
    b = te.placeholder((n // LANES, k // GROUP, LANES, GROUP), "int8", name="B")
    r = te.reduce_axis((0, k), name="r")
    c = te.compute(
        (m, n),
        lambda i, j: te.sum(
            a[i, r].astype("int32") * b[j // LANES, r // GROUP, j % LANES, r % GROUP].astype("int32"), axis=r
        ),
        name="C",
    )
    return a, b, c


def conv2d_u8s8(
    n: int = 1, h: int = 56, w: int = 56, ci: int = 64, co: int = 64, kernel_size: int = 3, stride: int = 1,
    padding: int = 1,
) -> tuple[te.Tensor, ...]:
    """NCHW4c data (u8) x OIHW16o4i kernel (s8) -> NCHW16c output (s32), zero padding, square kernel."""
    k, s, p = kernel_size, stride, padding
    data = te.placeholder((n, ci // GROUP, h, w, GROUP), "uint8", name="data")
    kernel = te.placeholder((co // LANES, ci // GROUP, k, k, LANES, GROUP), "int8", name="kernel")
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    padded = data
    if p:
        padded = te.compute(
            (n, ci // GROUP, h + 2 * p, w + 2 * p, GROUP),
            lambda b, c, y, x, e: tirx.if_then_else(
                tirx.all(y >= p, y < h + p, x >= p, x < w + p), data[b, c, y - p, x - p, e], tirx.const(0, "uint8")
            ),
            name="pad",
        )
    ic = te.reduce_axis((0, ci // GROUP), name="ic")
    kh = te.reduce_axis((0, k), name="kh")
    kw = te.reduce_axis((0, k), name="kw")
    e = te.reduce_axis((0, GROUP), name="e")
    out = te.compute(
        (n, co // LANES, out_h, out_w, LANES),
        lambda b, oc, y, x, o: te.sum(
            padded[b, ic, y * s + kh, x * s + kw, e].astype("int32") * kernel[oc, ic, kh, kw, o, e].astype("int32"),
            axis=[ic, kh, kw, e],
        ),
        name="conv",
    )
    return data, kernel, out


_INT8_BUILDERS = {"DENSE_U8S8": dense_u8s8, "C2D_U8S8": conv2d_u8s8}
# parameter -> the multiple it must be (the packed layouts split these dimensions in 16s or 4s)
_MULTIPLE_OF = {"DENSE_U8S8": {"n": LANES, "k": GROUP}, "C2D_U8S8": {"co": LANES, "ci": GROUP}}


def _make_int8_operator(name: str) -> Operator:
    builder = _INT8_BUILDERS[name]
    defaults = {p.name: int(p.default) for p in inspect.signature(builder).parameters.values()}
    return Operator(name, _DESCRIPTIONS[name], builder, defaults, {key: key for key in defaults})


OPERATORS: dict[str, Operator] = {
    **{name: _make_operator(name) for name in PAPER_NAMES},
    **{name: _make_int8_operator(name) for name in INT8_NAMES},
}


def find_operator(name: str) -> Operator:
    """The operator called ``name`` (case-insensitive); ValueError listing the valid names otherwise."""
    operator = OPERATORS.get(name.strip().upper())
    if operator is None:
        raise ValueError(f"unknown operator {name!r}; valid names: {', '.join(OPERATOR_NAMES)}")
    return operator


def resolve_params(operator: Operator, overrides: dict[str, object]) -> dict[str, int]:
    """The operator's defaults with ``overrides`` applied, every value checked."""
    unknown = [key for key in overrides if key not in operator.defaults]
    if unknown:
        raise ValueError(
            f"{operator.name} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters (with defaults) are: {operator.signature()}"
        )
    params = {**operator.defaults, **overrides}
    for key, value in params.items():
        check = check_non_negative_int if key in _MAY_BE_ZERO else check_positive_int
        params[key] = check(f"{operator.name} parameter {key!r}", value)
    return params


def build_operator(operator: Operator, params: dict[str, int]) -> tirx.PrimFunc:
    """The unscheduled PrimFunc of ``operator`` at ``params``; ValueError if TVM rejects that shape."""
    _check_groups(operator, params)
    _check_packing(operator, params)
    kwargs = {operator.builder_names[key]: value for key, value in params.items()}
    try:
        tensors = operator.builder(**kwargs)
        func = te.create_prim_func(list(tensors))
    except Exception as err:  # AssertionError, TVMError, ZeroDivisionError: all mean "this shape is invalid"
        raise ValueError(
            f"{operator.name} cannot be built with {_format(params)}: {type(err).__name__}: {err}"
        ) from err
    for param in func.params:
        if any(int(dim) <= 0 for dim in param.shape):
            shape = [int(dim) for dim in param.shape]
            raise ValueError(
                f"{operator.name} with {_format(params)} gives {param.name} the empty shape {shape}; "
                "make the input larger or the kernel, stride or dilation smaller"
            )
    return func


def _check_groups(operator: Operator, params: dict[str, int]) -> None:
    """Grouped convolutions need ``groups`` to divide both channel counts (TE would silently truncate)."""
    groups = params.get("groups", 1)
    for key in ("ci", "co"):
        if key in params and params[key] % groups:
            raise ValueError(
                f"{operator.name}: groups={groups} must divide {key}={params[key]} ({_format(params)})"
            )


def _check_packing(operator: Operator, params: dict[str, int]) -> None:
    """The int8 layouts pack dimensions in groups of 16 or 4; other sizes cannot be laid out."""
    for key, multiple in _MULTIPLE_OF.get(operator.name, {}).items():
        if params[key] % multiple:
            raise ValueError(
                f"{operator.name}: {key}={params[key]} must be a multiple of {multiple} (the packed layout "
                f"holds {multiple} of them together); e.g. {key}={max(multiple, params[key] // multiple * multiple)}"
            )


def _format(params: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())

"""Numpy references for the named operators, written from the TE definitions in ``te_workload``.

Each reference takes the operator's parameters and its input arrays (in PrimFunc argument order,
outputs left out) and returns the outputs in float64 (int64 for the int8 operators, exact whatever the
data: a kernel whose arithmetic saturates or wraps cannot match by luck); the caller casts them to the
output dtype.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

Reference = Callable[[dict, list], list]


def _conv_nd(x, w, stride: int, padding: int, dilation: int, groups: int, max_patch_elements: int = 1 << 22):
    """Channels-last N-d convolution: x (N, *S, CI), w (*K, CI/groups, CO) -> (N, *O, CO).

    im2col over slabs of the first output axis, then one batched matmul over the groups: BLAS does the
    work and the patch matrix stays near ``max_patch_elements`` (C3D at its default shape: 2-3 s).
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    spatial, kernel = x.shape[1:-1], w.shape[:-2]
    ci_per_group, co = w.shape[-2], w.shape[-1]
    co_per_group = co // groups
    out = [(s + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for s, k in zip(spatial, kernel)]
    xp = np.pad(x, [(0, 0)] + [(padding, padding)] * len(spatial) + [(0, 0)])[..., : groups * ci_per_group]
    # (groups, K * CI/groups, CO/groups), rows ordered (kernel offset, input channel) like the patches below
    weight = w.reshape(-1, ci_per_group, groups, co_per_group).transpose(2, 0, 1, 3)
    weight = np.ascontiguousarray(weight.reshape(groups, -1, co_per_group))
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    row_size = x.shape[0] * int(np.prod(out[1:])) * len(offsets) * xp.shape[-1]
    slab = max(1, max_patch_elements // max(row_size, 1))
    result = np.empty((x.shape[0], *out, co))
    for first in range(0, out[0], slab):
        rows = min(slab, out[0] - first)
        windows = []
        for offset in offsets:
            starts = [first * stride + offset[0] * dilation] + [o * dilation for o in offset[1:]]
            counts = [rows] + out[1:]
            window = (slice(b, b + stride * (n - 1) + 1, stride) for b, n in zip(starts, counts))
            windows.append(xp[(slice(None), *window)])  # (N, rows, *O[1:], CI)
        patches = np.stack(windows, axis=-2)  # (N, rows, *O[1:], K, CI)
        lead = patches.shape[:-2]
        patches = patches.reshape(-1, len(offsets), groups, ci_per_group).transpose(2, 0, 1, 3)
        patches = np.ascontiguousarray(patches).reshape(groups, -1, len(offsets) * ci_per_group)
        product = patches @ weight  # (groups, M, CO/groups)
        result[:, first : first + rows] = product.transpose(1, 0, 2).reshape(*lead, co)
    return result


def _gmm(p, inputs):
    x, y = inputs
    return [np.matmul(np.asarray(x, np.float64), np.asarray(y, np.float64))]


def _conv(p, inputs):
    x, w = inputs
    return [_conv_nd(x, w, p["stride"], p["padding"], p["dilation"], p["groups"])]


def _depthwise(p, inputs):
    x, w = inputs  # w: (factor=1, k, k, C) -> a grouped conv with one channel per group
    weight = np.moveaxis(w, 0, -2)  # (k, k, 1, C)
    return [_conv_nd(x, weight, p["stride"], p["padding"], p["dilation"], groups=x.shape[-1])]


def _transposed(p, inputs):
    """Scatter form: input pixel (h, w) adds x*w[kh, kw] at (h*stride + kh, w*stride + kw), then crop."""
    x, w = (np.asarray(a, np.float64) for a in inputs)
    n, h, wd, _ = x.shape
    k, stride, pad = w.shape[0], p["stride"], p["padding"]
    full = np.zeros((n, (h - 1) * stride + k, (wd - 1) * stride + k, w.shape[-1]))
    for kh, kw in itertools.product(range(k), range(w.shape[1])):
        contribution = np.einsum("nhwc,co->nhwo", x, w[kh, kw])
        full[:, kh : kh + stride * (h - 1) + 1 : stride, kw : kw + stride * (wd - 1) + 1 : stride] += contribution
    out_h, out_w = full.shape[1] - 2 * pad, full.shape[2] - 2 * pad
    return [full[:, pad : pad + out_h, pad : pad + out_w]]


def _capsule(p, inputs):
    x, w = (np.asarray(a, np.float64) for a in inputs)  # x (N,H,W,I,K,C); w (kh,kw,K,J,C,O)
    k, stride, pad = p["kernel_size"], p["stride"], p["padding"]
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0), (0, 0), (0, 0)])
    out_h = (x.shape[1] + 2 * pad - k) // stride + 1
    out_w = (x.shape[2] + 2 * pad - k) // stride + 1
    result = 0.0
    for kh, kw in itertools.product(range(k), range(k)):
        patch = xp[:, kh : kh + stride * (out_h - 1) + 1 : stride, kw : kw + stride * (out_w - 1) + 1 : stride]
        result = result + np.einsum("nhwikc,kjco->nhwijo", patch, w[kh, kw])
    return [result]


def _norm(p, inputs):
    (a,) = inputs
    return [np.sqrt(np.sum(np.square(np.asarray(a, np.float64)), axis=(1, 2)))]


def _softmax(p, inputs):
    a = np.asarray(inputs[0], np.float64)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return [e / e.sum(axis=1, keepdims=True)]


def _conv_bn_relu(p, inputs):
    data, kernel, bias, bn_offset, bn_scale = inputs  # te_workload's argument order
    conv = _conv_nd(data, kernel, p["strides"], p["padding"], p["dilation"], groups=1)
    return [np.maximum((conv + bias) * bn_scale + bn_offset, 0.0)]


def _transpose_batch_matmul(p, inputs):
    query, value = (np.asarray(a, np.float64) for a in inputs)  # both (batch, seq, head, dim)
    return [np.einsum("bihk,bjhk->bhij", query, value)]


def _unpack_weight(packed):
    """``B[o/16, i/4, o%16, i%4]`` (the 16x4 dot-product layout) -> ``W[o, i]``, as int64."""
    blocks_o, blocks_i, lanes, group = packed.shape
    return np.asarray(packed, np.int64).transpose(0, 2, 1, 3).reshape(blocks_o * lanes, blocks_i * group)


def _dense_u8s8(p, inputs):
    data, packed = inputs
    return [np.asarray(data, np.int64) @ _unpack_weight(packed).T]


def _conv2d_u8s8(p, inputs):
    """NCHW4c x OIHW16o4i -> NCHW16c, as an int64 im2col matmul."""
    data, packed = inputs
    n, c_blocks, h, w, group = data.shape
    o_blocks, _, k, _, lanes, _ = packed.shape
    s, pad = p["stride"], p["padding"]
    x = np.asarray(data, np.int64).transpose(0, 2, 3, 1, 4).reshape(n, h, w, c_blocks * group)  # NHWC
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    out_h, out_w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    windows = [
        x[:, kh : kh + s * (out_h - 1) + 1 : s, kw : kw + s * (out_w - 1) + 1 : s] for kh in range(k) for kw in range(k)
    ]
    patches = np.stack(windows, axis=3)  # (N, OH, OW, KH*KW, CI)
    # kernel (O/16, I/4, KH, KW, 16, 4) -> (KH*KW, CI, CO), rows in the patches' order
    weight = np.asarray(packed, np.int64).transpose(2, 3, 1, 5, 0, 4).reshape(k * k, c_blocks * group, o_blocks * lanes)
    out = patches.reshape(n * out_h * out_w, -1) @ weight.reshape(-1, o_blocks * lanes)  # int64: exact
    return [out.reshape(n, out_h, out_w, o_blocks, lanes).transpose(0, 3, 1, 2, 4)]


REFERENCES: dict[str, Reference] = {
    "GMM": _gmm,
    "C1D": _conv,
    "C2D": _conv,
    "C3D": _conv,
    "DIL": _conv,
    "GRP": _conv,
    "DEP": _depthwise,
    "T2D": _transposed,
    "CAP": _capsule,
    "NRM": _norm,
    "SFM": _softmax,
    "CBR": _conv_bn_relu,
    "TBG": _transpose_batch_matmul,
    "DENSE_U8S8": _dense_u8s8,
    "C2D_U8S8": _conv2d_u8s8,
}

"""Batch norms of inference folded into the convolution before them: one task instead of a convolution plus an
elementwise pass over its output.

In eval mode a batch norm is ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` with constants, so after a 2-D
convolution it is the convolution with its output channels' weights scaled by ``gamma / sqrt(var + eps)``, plus a
per-channel bias, which fusion then puts into the convolution's task with the ReLU after it. TVM has a pass for it
(``relax.transform.FoldBatchnormToConv2D``), but it crashed the process (a segmentation fault) on a PyTorch
ResNet block here; this one computes the folded constants with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import TupleGetItemPattern, is_const, is_op, rewrite_call, wildcard

__all__ = ["fold_batch_norm"]


def fold_batch_norm(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with every inference batch norm (constant statistics, ``training=False``) that follows an NCHW/OIHW
    conv2d with constant weights (and, as PyTorch's ``Conv2d(bias=True)`` exports, a constant bias added to it)
    folded into it; anything else is left as it is."""
    for with_bias in (True, False):
        mod = _fold(mod, with_bias)
    return mod


def _fold(mod: tvm.IRModule, with_bias: bool) -> tvm.IRModule:
    data, weight, bias = wildcard(), is_const(), is_const()
    conv = is_op("relax.nn.conv2d")(data, weight)
    # PyTorch's conv bias arrives reshaped to (1, C, 1, 1) by R.reshape of the constant, not folded yet
    before = is_op("relax.add")(conv, bias | is_op("relax.reshape")(bias, wildcard())) if with_bias else conv
    gamma, beta, mean, var = is_const(), is_const(), is_const(), is_const()
    norm = is_op("relax.nn.batch_norm")(before, gamma, beta, mean, var)
    pattern = TupleGetItemPattern(norm, 0)

    def rewrite(expr: Any, matches: dict) -> Any:
        conv_call, norm_call = matches[conv], matches[norm]
        attrs, norm_attrs = conv_call.attrs, norm_call.attrs
        if (
            bool(norm_attrs.training)
            or int(norm_attrs.axis) != 1
            or str(attrs.data_layout) != "NCHW"
            or str(attrs.kernel_layout) != "OIHW"
            or str(attrs.out_layout) not in ("", "NCHW")
        ):
            return expr
        w = matches[weight].value.numpy()
        g, b, m, v = (matches[p].value.numpy().astype("float64") for p in (gamma, beta, mean, var))
        channels = w.shape[0]
        if not (w.dtype == np.float32 and g.shape == b.shape == m.shape == v.shape == (channels,)):
            return expr
        c = np.zeros(channels)
        if with_bias:
            added = matches[bias].value.numpy()
            if added.size != channels or added.shape not in ((channels,), (1, channels, 1, 1)):
                return expr
            c = added.reshape(channels).astype("float64")
        scale = (g if bool(norm_attrs.scale) else np.ones_like(g)) / np.sqrt(v + float(norm_attrs.epsilon))
        shift = (b if bool(norm_attrs.center) else np.zeros_like(b)) + (c - m) * scale
        folded = (w.astype("float64") * scale[:, None, None, None]).astype(w.dtype)
        out = relax.Call(conv_call.op, (matches[data], relax.const(folded)), attrs)
        return relax.op.add(out, relax.const(shift.astype(w.dtype).reshape(1, -1, 1, 1)))

    out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function):
            out[gv] = rewrite_call(pattern, rewrite, func)
    return out

"""Whole models from Relax (no torch needed): their tasks are workloads like any other."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tvm.script import ir as I
from tvm.script import relax as R

import msexplore as mx


@I.ir_module
class TwoLayerMLP:
    @R.function
    def main(
        x: R.Tensor((1, 64), "float32"),
        w1: R.Tensor((64, 128), "float32"),
        w2: R.Tensor((128, 128), "float32"),
        w3: R.Tensor((128, 128), "float32"),
    ):
        with R.dataflow():
            h1 = R.nn.relu(R.matmul(x, w1))
            h2 = R.nn.relu(R.matmul(h1, w2))
            h3 = R.nn.relu(R.matmul(h2, w3))  # the same shapes as h2: the same task, called twice
            R.output(h3)
        return h3


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return {name: rng.uniform(-1, 1, shape).astype("float32") for name, shape in
            [("w1", (64, 128)), ("w2", (128, 128)), ("w3", (128, 128))]}


@pytest.fixture(scope="module")
def model(weights):
    return mx.Model.from_relax(TwoLayerMLP, weights, name="mlp")


def test_tasks_of_a_relax_model(model):
    tasks = model.tasks
    assert list(tasks.columns) == ["task", "weight", "flop", "flop_share", "inputs", "outputs", "workload"]
    rows = {row.task: row for row in tasks.itertuples(index=False)}
    assert sorted(rows) == ["fused_matmul1_relu", "fused_matmul_relu"]
    assert rows["fused_matmul_relu"].weight == 1 and rows["fused_matmul1_relu"].weight == 2
    # a matmul's multiply-adds plus the relu's comparisons (TVM's estimate)
    assert rows["fused_matmul_relu"].flop == 2 * 64 * 128 + 128
    assert rows["fused_matmul1_relu"].flop == 2 * 128 * 128 + 128
    assert tasks["flop_share"].sum() == pytest.approx(1.0)
    assert model.flop == (2 * 64 * 128 + 128) + 2 * (2 * 128 * 128 + 128)
    # the weights are constants of the model: a task's arguments are its activations and weights
    assert rows["fused_matmul1_relu"].inputs == "h1[1,128]f32 param_0[128,128]f32"
    assert rows["fused_matmul1_relu"].outputs == "compute_intermediate[1,128]f32"
    assert [str(s) for s in model.inputs] == ["x[1,64]f32"]


def test_a_task_is_a_workload_everything_takes(model, weights):
    task = model.task("fused_matmul_relu")
    wl = task.workload
    assert isinstance(wl, mx.Workload) and wl.name == "fused_matmul_relu"
    arrays = wl.make_inputs(seed=3)
    x, w = (arrays[k] for k in range(len(arrays)) if k not in wl.outputs)
    (got,) = wl.reference(arrays)  # the unscheduled TVM build of the fused function
    np.testing.assert_allclose(got, np.maximum(x @ w, 0), rtol=1e-5, atol=1e-5)
    samples = mx.Space(wl).sample(8, seed=0)
    assert sum(s.valid for s in samples) >= 4
    assert "T.sblock" in samples.valid[0].tir


def test_bad_input_to_a_model(model):
    with pytest.raises(TypeError, match="Model expects a Relax IRModule with a 'main' function, got str"):
        mx.Model("not a module")
    with pytest.raises(TypeError, match="params must be a dict of parameter name -> array, got list"):
        mx.Model.from_relax(TwoLayerMLP, [np.zeros(3)])
    listed = r"mlp has no task 'conv'; its tasks are \['fused_matmul1_relu', 'fused_matmul_relu'\]"
    with pytest.raises(KeyError, match=listed):
        model.task("conv")
    gmm = mx.workload("GMM", n=16, m=16, k=16)
    with pytest.raises(TypeError, match="the module's 'main' is a PrimFunc, not a Relax function"):
        mx.Model(gmm.mod)


def test_from_torch_without_torch_says_what_to_install():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        import msexplore as mx
        try:
            mx.Model.from_torch(object(), ())
        except ImportError as err:
            print(err)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Model.from_torch needs PyTorch" in done.stdout and "pip install 'msexplore[torch]'" in done.stdout


def test_model_repr(model):
    assert repr(model) == "Model(mlp, from relax, inputs x[1,64]f32, 2 task(s))"
    assert model.prepared is model.prepared  # legalized and fused once


@I.ir_module
class GeluLayer:
    @R.function
    def main(x: R.Tensor((4, 64), "float32"), w: R.Tensor((64, 64), "float32")):
        with R.dataflow():
            h = R.nn.gelu(R.matmul(x, w))
            R.output(h)
        return h


def test_fast_math_takes_gelu_off_scalar_erf_within_tolerance():
    from scipy.special import erf

    w = np.random.default_rng(0).uniform(-1, 1, (64, 64)).astype("float32")
    fast = mx.Model.from_relax(GeluLayer, {"w": w}, name="gelu")
    exact = mx.Model.from_relax(GeluLayer, {"w": w}, name="gelu", fast_math=False)
    assert repr(exact) == "Model(gelu, from relax, inputs x[4,64]f32, 1 task(s), exact math)"

    def scripts(model):
        return "\n".join(t.workload.func.script() for t in model.task_list)

    assert "T.erf(" in scripts(exact)  # libm's scalar erff
    assert "T.erf(" not in scripts(fast) and "T_fast_erf" in scripts(fast)  # topi.fast_erf: a polynomial
    x = np.random.default_rng(1).uniform(-3, 3, (4, 64)).astype("float32")
    h = (x @ w).astype("float64")
    want = 0.5 * h * (1 + erf(h / np.sqrt(2)))
    with pytest.warns(UserWarning, match="fallback schedule"):
        compiled = mx.compile_model(fast)
    assert compiled.check.ok, compiled.check
    np.testing.assert_allclose(compiled(x), want, rtol=1e-5, atol=1e-5)


@I.ir_module
class TakeLayer:
    @R.function
    def main(x: R.Tensor((3, 8, 16), "float32")):
        with R.dataflow():
            y = R.take(x, R.const(2, "int64"), axis=0)  # as self-attention splits q, k, v
            R.output(y)
        return y


def test_a_constant_argument_of_a_task_is_fixed_in_its_workload():
    """A task's index argument is a constant of the model: random int64 values there would read out of bounds
    (and crash the process that computes the reference)."""
    model = mx.Model.from_relax(TakeLayer, name="take")
    (task,) = model.task_list
    wl = task.workload
    index = [k for k, spec in enumerate(wl.args) if spec.dtype == "int64"]
    assert list(wl.fixed_inputs) == index and int(wl.fixed_inputs[index[0]]) == 2
    arrays = wl.make_inputs(seed=5)
    assert int(arrays[index[0]]) == 2
    (got,) = wl.reference(arrays)
    np.testing.assert_array_equal(got, arrays[0][2])
    again = mx.Workload.from_json(wl.to_json())  # a run folder's run.json keeps it
    assert {k: int(v) for k, v in again.fixed_inputs.items()} == {index[0]: 2}
    with pytest.warns(UserWarning, match="fallback schedule"):
        compiled = mx.compile_model(model)  # measures samples: the runner's check uses the fixed index too
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 16)).astype("float32")
    np.testing.assert_array_equal(compiled(x), x[2])


@I.ir_module
class ScaledMatmul:
    @R.function
    def main(x: R.Tensor((1, 128), "float32"), w: R.Tensor((128, 256), "float32"), s: R.Tensor((256,), "float32")):
        with R.dataflow():
            y = R.multiply(R.matmul(x, w), s)
            R.output(y)
        return y


def test_weights_stay_random_in_a_tasks_workload_small_constants_stay_fixed():
    """A weight matrix is not copied into the task's workload (it would go into run.json and every candidate sent to
    the runner); a small constant such as a scale is, as the model has it."""
    rng = np.random.default_rng(0)
    params = {"w": rng.uniform(-1, 1, (128, 256)).astype("float32"), "s": np.full(256, 0.5, "float32")}
    model = mx.Model.from_relax(ScaledMatmul, params, name="scaled")
    (task,) = model.task_list
    wl = task.workload
    shapes = {k: tuple(spec.shape) for k, spec in enumerate(wl.args)}
    assert [shapes[k] for k in wl.fixed_inputs] == [(256,)]  # the scale, not the 128 x 256 weight
    assert np.all(next(iter(wl.fixed_inputs.values())) == 0.5)
    assert len(json.dumps(wl.to_json())) < 20_000


@I.ir_module
class ConvLayer:
    @R.function
    def main(x: R.Tensor((1, 16, 8, 8), "float32"), w: R.Tensor((32, 16, 3, 3), "float32")):
        with R.dataflow():
            y = R.nn.relu(R.nn.conv2d(x, w, padding=1))
            R.output(y)
        return y


def test_convolutions_channels_last_give_the_avx512_module_its_contiguous_axis():
    w = np.random.default_rng(0).uniform(-1, 1, (32, 16, 3, 3)).astype("float32")
    nchw = mx.Model.from_relax(ConvLayer, {"w": w}, name="conv")
    nhwc = mx.Model.from_relax(ConvLayer, {"w": w}, name="conv", conv_layout="NHWC")
    assert repr(nhwc) == "Model(conv, from relax, inputs x[1,16,8,8]f32, 3 task(s), convolutions NHWC)"
    assert nhwc.inputs == nchw.inputs  # the model is called as before; transposes at its ends

    def conv_task(model):
        return next(t for t in model.task_list if "conv2d" in t.name)

    assert conv_task(nchw).workload.args[-1].shape == (1, 32, 8, 8)
    assert conv_task(nhwc).workload.args[-1].shape == (1, 8, 8, 32)  # channels contiguous: 32 = 2 x 16 lanes
    # and the weights HWIO: output channels contiguous there too (OHWI made the micro-kernel's weight loads gathers)
    assert conv_task(nhwc).workload.args[1].shape == (3, 3, 16, 32)

    def design_spaces(model, modules):
        return len(mx.Space(conv_task(model).workload, modules, target=model.target).design_spaces)

    if mx.hardware.avx512.has_avx512():
        # the micro-kernel forks the space only where the output's last axis is the (16-divisible) channel axis
        assert design_spaces(nchw, ["default", "x86-avx512"]) == design_spaces(nchw, ["default"])
        assert design_spaces(nhwc, ["default", "x86-avx512"]) > design_spaces(nhwc, ["default"])
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 8, 8)).astype("float32")
    with pytest.warns(UserWarning, match="fallback schedule"):
        a, b = mx.compile_model(nchw), mx.compile_model(nhwc)
    assert a.check.ok and b.check.ok, (a.check, b.check)
    np.testing.assert_allclose(b(x), a(x), rtol=1e-5, atol=1e-5)
    accepted = r"conv_layout must be one of \['NHWC'\] or None \(the source's\), got 'NCHWc'"
    with pytest.raises(ValueError, match=accepted):
        mx.Model.from_relax(ConvLayer, {"w": w}, conv_layout="NCHWc")


@I.ir_module
class ConvBatchNormLayer:
    @R.function
    def main(x: R.Tensor((1, 8, 6, 6), "float32"), w: R.Tensor((8, 8, 3, 3), "float32"),
             gamma: R.Tensor((8,), "float32"), beta: R.Tensor((8,), "float32"), mean: R.Tensor((8,), "float32"),
             var: R.Tensor((8,), "float32")):
        with R.dataflow():
            y = R.nn.conv2d(x, w, padding=1)
            z = R.nn.batch_norm(y, gamma, beta, mean, var, axis=1, epsilon=1e-5, training=False)
            out = R.nn.relu(z[0])
            R.output(out)
        return out


def test_an_inference_batch_norm_is_folded_into_the_convolution_before_it():
    import tvm
    from tvm import relax

    rng = np.random.default_rng(0)
    params = {
        "w": rng.uniform(-1, 1, (8, 8, 3, 3)), "gamma": rng.uniform(0.5, 2, 8), "beta": rng.uniform(-1, 1, 8),
        "mean": rng.uniform(-1, 1, 8), "var": rng.uniform(0.5, 2, 8),
    }
    params = {k: v.astype("float32") for k, v in params.items()}
    model = mx.Model.from_relax(ConvBatchNormLayer, params, name="convbn")
    assert [t.name for t in model.task_list] == ["fused_conv2d_add_relu"]  # one task: no batch-norm pass after it
    x = rng.uniform(-1, 1, (1, 8, 6, 6)).astype("float32")
    unfolded = relax.transform.BindParams("main", {k: tvm.runtime.tensor(v) for k, v in params.items()})(
        ConvBatchNormLayer
    )

    def run(mod):
        vm = relax.VirtualMachine(relax.build(mod, target="llvm"), tvm.cpu())
        return vm["main"](tvm.runtime.tensor(x)).numpy()

    np.testing.assert_allclose(run(model.mod), run(unfolded), rtol=1e-5, atol=1e-5)

"""Models from PyTorch end to end (run in .venv-torch: `make test` does): import through torch.export, tune a few
trials, compile with no task untuned, match PyTorch, export, and load in a fresh process without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import msexplore as mx

SMALL = dict(batch_size=4)  # tune_model's default strategy, the beam


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class ConvBlock(torch.nn.Module):
    """conv - batch norm - relu with a residual: what a ResNet basic block is made of, small."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))) + x


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return MLP().eval()


def test_mlp_from_torch_end_to_end(mlp, tmp_path):
    model = mx.Model.from_torch(mlp, (torch.randn(1, 64),))
    assert repr(model) == "Model(MLP, from torch, inputs x[1,64]f32, 2 task(s))"
    assert sorted(model.tasks["weight"]) == [1, 1]
    run = mx.tune_model(model, trials=8, work_dir=tmp_path / "run", **SMALL).wait()
    assert run.status == "done", run.error
    assert run.tasks["best_latency_s"].notna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every task tuned: no fallback warning
        compiled = run.compile()
    assert compiled.check.against == "PyTorch eager" and compiled.check.ok, compiled.check
    x = torch.randn(1, 64)
    with torch.no_grad():
        want = mlp(x).numpy()
    np.testing.assert_allclose(compiled(x), want, rtol=1e-4, atol=1e-4)  # a torch tensor in, numpy out
    np.testing.assert_allclose(compiled(x.numpy()), want, rtol=1e-4, atol=1e-4)
    timing = compiled.benchmark(repeat=3)
    assert timing["torch_median_s"] > 0 and timing["speedup_vs_torch"] > 0

    compiled.export(tmp_path / "bundle")
    np.save(tmp_path / "x.npy", x.numpy())
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # a process without torch
        import numpy as np
        import msexplore as mx
        model = mx.load_model({str(tmp_path / "bundle")!r})
        np.save({str(tmp_path / "y.npy")!r}, model(np.load({str(tmp_path / "x.npy")!r})))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-4, atol=1e-4)


def test_conv_block_compiles_without_tuning_through_measured_fallbacks():
    torch.manual_seed(1)
    block = ConvBlock().eval()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        block.bn.running_mean.uniform_(-0.5, 0.5)
        block.bn.running_var.uniform_(0.5, 1.5)
    model = mx.Model.from_torch(block, (torch.randn(1, 8, 16, 16),))
    assert not any("batch_norm" in t.name for t in model.task_list), model.tasks  # folded into the convolution
    with pytest.warns(UserWarning, match=r"task\(s\) of ConvBlock had no tuning record and got a fallback schedule"):
        compiled = mx.compile_model(model)
    assert len(compiled.fallbacks) == len(model.task_list)
    assert all(f.latency_s for f in compiled.fallbacks)
    assert compiled.check.ok, compiled.check
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(compiled(x), block(x).numpy(), rtol=1e-4, atol=1e-4)


def test_untraceable_model_names_what_to_do():
    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # Python control flow on a tensor's value
                return x * 2
            return x

    with pytest.raises(mx.ModelImportError, match=r"torch.export could not trace Branchy: .*data-dependent.*"
                       r"Make forward traceable"):
        mx.Model.from_torch(Branchy().eval(), (torch.randn(4),))


def test_operator_without_a_converter_is_named():
    class Determinant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.det(x)

    named = (
        r"no converter for the PyTorch operator\(s\) \['_linalg_det.default'\] used by Determinant: "
        r".*custom_convert_map=\{'_linalg_det.default': converter\}"
    )
    with pytest.raises(mx.ModelImportError, match=named):
        mx.Model.from_torch(Determinant().eval(), (torch.randn(4, 4),))


def test_bad_torch_input(mlp):
    with pytest.raises(ValueError, match=r"MLP is in training mode .*pass module.eval\(\)"):
        mx.Model.from_torch(MLP(), (torch.randn(1, 64),))
    with pytest.raises(TypeError, match="from_torch expects a torch.nn.Module, got function"):
        mx.Model.from_torch(lambda x: x, (torch.randn(1, 64),))
    with pytest.raises(TypeError, match="example_inputs must be a tuple of torch.Tensor"):
        mx.Model.from_torch(mlp, (np.zeros((1, 64), "float32"),))

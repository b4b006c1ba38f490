"""``msexplore tune-model`` on a PyTorch factory (run in .venv-torch): tuned, compiled and checked against PyTorch
eager; a module in training mode or one torch.export cannot trace is bad input, said as Model.from_torch says it."""

from __future__ import annotations

import json
import textwrap

import pytest

from msexplore.cli import main

FACTORIES = textwrap.dedent(
    """
    import torch


    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(64, 128)
            self.fc2 = torch.nn.Linear(128, 10)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # Python control flow on a tensor's value: torch.export cannot trace it
                return x * 2
            return x


    def make():
        torch.manual_seed(0)
        return MLP().eval(), (torch.randn(1, 64),)


    def training():
        return MLP(), (torch.randn(1, 64),)


    def branchy():
        return Branchy().eval(), (torch.randn(4),)
    """
)


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    path = tmp_path_factory.mktemp("factories") / "torch_models.py"
    path.write_text(FACTORIES)
    return path


def test_tune_model_of_a_torch_factory_is_checked_against_pytorch(factories, tmp_path, capsys):
    argv = ["tune-model", f"{factories}:make", "--trials", "4", "--batch-size", "4", "--work-dir",
            str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "done" and (summary["model"], summary["source"]) == ("make", "torch")
    assert summary["inputs"] == ["x[1,64]f32"] and len(summary["tasks"]) == 2
    assert summary["check"]["against"] == "PyTorch eager" and summary["check"]["ok"] is True, summary["check"]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("training", "MLP is in training mode (dropout, batch-norm statistics); pass module.eval()"),
        ("branchy", "torch.export could not trace Branchy: "),
    ],
)
def test_a_module_from_torch_cannot_take_is_bad_input(factories, factory, message, capsys):
    assert main(["tune-model", f"{factories}:{factory}", "--trials", "4", "-q"]) == 2
    err = capsys.readouterr().err
    # the last line (torch.export itself prints the graph it could not trace on stderr before it raises)
    assert err.splitlines()[-1].startswith(f"msexplore tune-model: error: {message}"), err

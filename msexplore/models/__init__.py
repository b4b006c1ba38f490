"""Whole models: a PyTorch or Relax model, its tuning tasks as msexplore workloads, tuned under one budget, compiled
with no task left untuned, checked against its source, exported and loaded again without torch."""

from .bundle import ModelBundle, export_model
from .compiled import CompiledModel, Fallback, ModelCheck, compile_model, load_model
from .model import Model, ModelImportError, Task
from .tuning import ModelProgress, ModelRun, open_model_run, tune_model

__all__ = [
    "CompiledModel", "Fallback", "Model", "ModelBundle", "ModelCheck", "ModelImportError", "ModelProgress", "ModelRun",
    "Task", "compile_model", "export_model", "load_model", "open_model_run", "tune_model",
]

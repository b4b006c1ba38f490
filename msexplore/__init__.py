"""msexplore: explore TVM MetaSchedule search spaces from a notebook or a script.

>>> import msexplore as mx
>>> space = mx.Space(mx.workload("GMM", n=64, m=64, k=64), modules=["default"])
>>> samples = space.sample(50, seed=0)
"""

from .target import run_kernels_on_every_core as _run_kernels_on_every_core

_run_kernels_on_every_core()  # before any kernel runs: TVM alone would use half the cores of a VM (see target.py)

from .cost_model import CostModel, NotFittedError, Quality
from .export import Bundle, Kernel, load_kernel
from .measure import Measurement, RPCSettings, measure
from .models import (
    CompiledModel,
    Model,
    ModelImportError,
    ModelRun,
    compile_model,
    load_model,
    open_model_run,
    tune_model,
)
from .modules import (
    ModuleFailure,
    ModuleNotApplicable,
    TransformModule,
    default_module_names,
    module,
    registered_modules,
    unregister,
)
from .random_variables import RandomVariable
from .records import compare_runs, read_records
from .sampling import Diff, Sample, SampleSet, diff, instruction_table
from .search import Candidate, Progress, SearchRun, TrialEvent, open_run, search
from .space import DesignSpace, Space, SpaceError
from .target import host_target, resolve_target
from .traces import trace_from_json, trace_to_json
from .workloads import TensorSpec, Workload, workload, workload_names

# Last, after the core it registers into. (isort: split keeps it out of the sorted block above.)
# isort: split
from . import hardware  # noqa: E402,F401  registers the hardware modules ("x86-vnni", ...) by name

# isort: split
from . import report  # noqa: E402,F401  registers run.report(path): the HTML report, a layer above the core

__version__ = "0.1.0"

__all__ = [
    "CostModel",
    "NotFittedError",
    "Quality",
    "Bundle",
    "Kernel",
    "Measurement",
    "CompiledModel",
    "Model",
    "ModelImportError",
    "ModelRun",
    "compile_model",
    "load_model",
    "open_model_run",
    "tune_model",
    "RPCSettings",
    "load_kernel",
    "measure",
    "Candidate",
    "Progress",
    "SearchRun",
    "TrialEvent",
    "compare_runs",
    "open_run",
    "read_records",
    "search",
    "Diff",
    "DesignSpace",
    "ModuleFailure",
    "ModuleNotApplicable",
    "RandomVariable",
    "Sample",
    "SampleSet",
    "Space",
    "SpaceError",
    "TensorSpec",
    "TransformModule",
    "Workload",
    "default_module_names",
    "diff",
    "host_target",
    "instruction_table",
    "module",
    "registered_modules",
    "resolve_target",
    "trace_from_json",
    "trace_to_json",
    "unregister",
    "workload",
    "workload_names",
]


def _show_runs_as_dashboards() -> None:
    """In a Jupyter kernel, a ``SearchRun`` as a cell's last line displays its live dashboard."""
    import sys

    if "IPython" in sys.modules:
        from .ui.display import register  # imports no widget library until a run is displayed

        register()


_show_runs_as_dashboards()


def __getattr__(name: str):  # the notebook layer loads only when asked for (scripts never import ipywidgets)
    if name in ("ui", "figures"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'msexplore' has no attribute {name!r}")


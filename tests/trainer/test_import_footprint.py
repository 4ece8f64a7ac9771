"""The trainer must import with torch and numpy alone (its benchmark runs on bare GPU machines);
the progress bars it shares with the simulated crowd import neither, so the crowd stays torch-free."""

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

BLOCKED = ("pandas", "kedro", "mlflow", "sklearn", "scipy", "tqdm", "matplotlib", "yaml", "pyarrow")

PROGRAM = """
import builtins, sys
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name.split(".")[0] in {blocked!r}:
        raise ImportError("{what} may not import " + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
sys.path.insert(0, {src!r})
{body}
print("ok")
"""


def _imports_without(blocked: tuple[str, ...], what: str, body: str) -> subprocess.CompletedProcess:
    program = PROGRAM.format(blocked=blocked, what=what, src=str(PROJECT_ROOT / "src"), body=body)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )


def test_trainer_imports_with_torch_and_numpy_alone():
    done = _imports_without(
        BLOCKED,
        "the trainer",
        "import soft_label_audit.trainer as trainer\ntrainer.train_runs, trainer.build_model",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("module", "blocked"),
    [
        ("soft_label_audit.progress", (*BLOCKED, "torch", "numpy")),
        ("soft_label_audit.crowd.simulated", ("torch",)),
    ],
)
def test_the_shared_progress_bars_pull_in_no_torch(module, blocked):
    done = _imports_without(blocked, module, f"import {module}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"

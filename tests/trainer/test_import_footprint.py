"""The trainer must import with torch and numpy alone (its benchmark runs on bare GPU machines)."""

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

BLOCKED = ("pandas", "kedro", "mlflow", "sklearn", "scipy", "tqdm", "matplotlib", "yaml", "pyarrow")

PROGRAM = f"""
import builtins, sys
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name.split(".")[0] in {BLOCKED!r}:
        raise ImportError("the trainer may not import " + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
sys.path.insert(0, {str(PROJECT_ROOT / "src")!r})
import soft_label_audit.trainer as trainer
trainer.train_runs, trainer.build_model
print("ok")
"""


def test_trainer_imports_with_torch_and_numpy_alone():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"

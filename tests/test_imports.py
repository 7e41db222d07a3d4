"""Paths that don't train never import TensorFlow, nor dask (checked in a fresh interpreter)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("tensorflow", "keras", "dask", "distributed")  # dask: only --scheduler loads it


def loaded_heavy_modules(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (heavy,)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nsys.argv = ['run.py', '--help']\n"
        "from hparams_lab.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert loaded_heavy_modules(code) == []


def test_help_loads_neither_tensorboard_nor_numpy():
    """--help reads the strategy table; the searches and the store behind it load only when a study runs."""
    code = (
        "import sys\nsys.argv = ['run.py', '--help']\n"
        "from hparams_lab.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert loaded_heavy_modules(code, ("tensorboard", "numpy", "sklearn", "optuna")) == []


def test_building_trials_and_writing_logs_do_not_import_tensorflow(tmp_path):
    code = f"""
from hparams_lab.study.run import DEFAULT_SPACE
from hparams_lab.search.registry import make_trials
from hparams_lab.execution.local import run_trials
from hparams_lab.training.data import check_data_source
from hparams_lab.training.models import resolve_model, check_hparams
from types import SimpleNamespace
trials = make_trials("grid", DEFAULT_SPACE, seed=0, trials=None)
check_data_source("digits")
check_hparams(resolve_model("mlp"), DEFAULT_SPACE.names)
fake = lambda trial, on_epoch, **_: SimpleNamespace(history={{"val_accuracy": [0.5]}}, test=None, epochs=1)
run_trials(trials[:2], fake, __import__("pathlib").Path({str(tmp_path)!r}))
"""
    assert loaded_heavy_modules(code) == []


def test_run_py_help_exits_cleanly():
    result = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert "--strategy" in result.stdout


def test_optuna_loads_only_when_a_bayes_study_runs():
    """optuna is an optional extra: the package, --help and planning other strategies never import it."""
    code = (
        "import sys\nsys.argv = ['run.py', '--help']\n"
        "import hparams_lab, hparams_lab.study.run, hparams_lab.search.bayes, hparams_lab.search.registry\n"
        "from hparams_lab.search.registry import plan_study\n"
        "from hparams_lab.study.run import DEFAULT_SPACE\n"
        "plan_study('hyperband', None, DEFAULT_SPACE, seed=0, trials=None, metric='best_val_accuracy', logdir='logs')\n"
        "from hparams_lab.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert loaded_heavy_modules(code, ("optuna",)) == []

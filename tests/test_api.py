"""The README's Python example, run as written: its model is built for each trial (so Keras
loads, and the test is slow), the fake (tests/fakes.py) stands in for fitting it."""

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(marker: str = "api-example") -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker}[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README lost its {marker} block"
    return match.group(1)


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys, fake_train):
    fake_train.configure(build=True)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    study = namespace["study"]
    assert len(study.results) == 2
    assert all(r.status.value == "SUCCESS" for r in study.results)
    assert all(0.0 <= r.metrics["best_val_accuracy"] <= 1.0 for r in study.results)
    assert study.experiment_dir == Path("logs") / "notebook-demo"
    assert sorted(p.name for p in (tmp_path / "logs" / "notebook-demo").iterdir()) == sorted(
        [".kept-bar.json", ".lock", "experiment.json"] + [r.trial.id for r in study.results]
    )
    assert "best:" in capsys.readouterr().out
    assert [made.model_spec.builder.__name__ for made in fake_train.made] == ["build"]  # the README's model


@pytest.mark.slow
def test_readme_arrays_example_trains_a_regression_of_arrays_in_memory(tmp_path, monkeypatch, capsys):
    """Real fits (the example is small): the task comes from the float targets, MAE ranks ascending."""
    monkeypatch.chdir(tmp_path)
    code = readme_example("arrays-example").replace("epochs=10", "epochs=2")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    study = namespace["study"]
    assert [r.status.value for r in study.results] == ["SUCCESS"] * 4
    maes = [r.metrics["best_val_mae"] for r in study.ranked()]
    assert maes == sorted(maes)
    record = json.loads((tmp_path / "logs" / "houses" / "experiment.json").read_text())
    assert record["settings"]["task"] == "regression" and record["data"] == {"kind": "memory", "type": "arrays"}
    assert "best:" in capsys.readouterr().out

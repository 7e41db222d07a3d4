"""The rooms' rules: the Keras boundary by package, one strategy table, one attempt-naming
rule, one study config, one default command, one error format."""

import ast
import dataclasses
from pathlib import Path

import pytest

from hparams_lab.cli.app import main
from hparams_lab.search.registry import NAMES, OPTION_NAMES, STRATEGIES
from hparams_lab.store import rundirs
from hparams_lab.study.config import StudyConfig

PACKAGE = Path(__file__).resolve().parents[1] / "hparams_lab"
HEAVY = ("tensorflow", "keras")


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in a file, at any depth (inside functions too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
    return out


def test_only_the_training_room_imports_keras_or_tensorflow():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for path in sorted(PACKAGE.rglob("*.py")) if path.parent.name != "training"
        for module, line in imported_modules(path) if module.split(".")[0] in HEAVY
    ]
    assert offenders == []


def test_the_training_room_imports_keras_only_inside_functions():
    for path in sorted((PACKAGE / "training").glob("*.py")):
        top_level = [node for node in ast.parse(path.read_text()).body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = [alias.name if isinstance(node, ast.Import) else node.module or ""
                 for node in top_level for alias in node.names]
        assert not [n for n in names if n.split(".")[0] in HEAVY], path


def test_rooms_below_never_import_rooms_above():
    """core is the vocabulary; review and tb never reach for the study machinery."""
    rules = {
        "core": ("hparams_lab.search", "hparams_lab.execution", "hparams_lab.store", "hparams_lab.tb",
                 "hparams_lab.training", "hparams_lab.review", "hparams_lab.study", "hparams_lab.cli"),
        "tb": ("hparams_lab.search", "hparams_lab.execution", "hparams_lab.store", "hparams_lab.training",
               "hparams_lab.review", "hparams_lab.study", "hparams_lab.cli"),
        "review": ("hparams_lab.search", "hparams_lab.execution", "hparams_lab.store", "hparams_lab.training",
                   "hparams_lab.study", "hparams_lab.cli"),
        "store": ("hparams_lab.search", "hparams_lab.execution", "hparams_lab.training", "hparams_lab.study",
                  "hparams_lab.cli"),
        "search": ("hparams_lab.execution", "hparams_lab.training", "hparams_lab.study", "hparams_lab.cli"),
    }
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for room, forbidden in rules.items() for path in sorted((PACKAGE / room).glob("*.py"))
        for module, line in imported_modules(path) if module.startswith(forbidden)
    ]
    assert offenders == []


def test_every_strategy_has_one_entry_and_the_cli_offers_exactly_those():
    study = main.commands["study"]
    choices = next(p for p in study.params if p.name == "strategy").type.choices
    assert sorted(choices) == sorted(NAMES) == sorted(STRATEGIES)
    cli_flags = {opt for p in study.params for opt in p.opts}
    for name, entry in STRATEGIES.items():
        assert set(entry.options) <= set(OPTION_NAMES) <= cli_flags, name


def test_attempts_are_ordered_by_number_not_by_name(tmp_path):
    names = ["abc", "abc.2", "abc.10", "abc.3", "abc.rerun-1", "abcd"]
    for name in names:
        (tmp_path / name).mkdir()
    assert [p.name for p in rundirs.attempts(tmp_path, "abc")] == ["abc", "abc.2", "abc.3", "abc.10"]
    assert rundirs.latest_attempt(tmp_path, "abc").name == "abc.10"
    assert rundirs.attempt_dir(tmp_path, "abc").name == "abc.11"
    assert rundirs.attempt_dir(tmp_path, "new").name == "new"
    assert rundirs.rerun_dir(tmp_path, "abc").name == "abc.rerun-2"
    assert [a.run_dir.name for a in rundirs.scan(tmp_path)] == [
        "abc", "abc.2", "abc.3", "abc.10", "abc.rerun-1", "abcd"]


def test_study_config_names_every_cli_study_option():
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    assert {p.name for p in main.commands["study"].params if p.name != "help"} <= fields
    with pytest.raises(TypeError, match="unknown study option.*epoch"):
        StudyConfig.of(epoch=3)


def test_run_study_takes_a_config_or_keywords_not_both(tmp_path):
    from hparams_lab import run_study

    with pytest.raises(TypeError, match="takes no other study options"):
        run_study(StudyConfig(logdir=tmp_path), epochs=1)
    assert not list(tmp_path.iterdir())


def test_study_is_the_default_command(runner, tmp_path):
    """An explicit `study` and none at all parse the same way (here: to the same user error)."""
    args = ["--logdir", str(tmp_path), "--metric", "nope"]
    implicit, explicit = runner.invoke(main, args), runner.invoke(main, ["study", *args])
    assert implicit.exit_code == explicit.exit_code == 2
    assert implicit.output == explicit.output
    assert implicit.output.strip().splitlines()[-1].startswith("Error: --metric 'nope': choose best_val_")


@pytest.mark.parametrize("command", ["review", "tensorboard", "rerun"])
def test_study_options_before_another_command_are_refused(runner, tmp_path, command):
    result = runner.invoke(main, ["--epochs", "3", "--strategy", "bayes", "--logdir", str(tmp_path / "logs"),
                                  command, "--help"])
    assert result.exit_code == 2, result.output
    assert f"study options can't be given with `{command}`" in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "logs").exists()


def test_an_option_value_that_names_a_command_is_not_a_command(runner, tmp_path):
    result = runner.invoke(main, ["--logdir", str(tmp_path), "--experiment", "review", "--metric", "nope"])
    assert result.exit_code == 2
    assert "Error: --metric 'nope'" in result.output


def test_every_command_reports_a_user_error_as_one_error_line(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.toml").write_text("hparams = [")
    outputs = {
        "study": runner.invoke(main, ["--logdir", str(tmp_path / "logs"), "--space", str(tmp_path / "bad.toml")]),
        "review": runner.invoke(main, ["review", str(tmp_path / "empty")]),
        "rerun": runner.invoke(main, ["rerun", str(tmp_path / "empty")]),
        "tensorboard": runner.invoke(main, ["tensorboard", str(tmp_path / "missing")]),
    }
    for command, result in outputs.items():
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (command, result.output)
        assert len(lines) == 1 and lines[0].startswith("Error: "), (command, result.output)


def test_one_line_keeps_the_substance_of_an_error_that_announces_it():
    from hparams_lab.core.errors import one_line

    class InvalidArgumentError(Exception):
        pass

    err = InvalidArgumentError("Graph execution error:\n\nDetected at node x defined at:\n  File \"a.py\", line 1\n"
                               "indices[0] = 7 is not in [0, 5)\n\t [[{{node y}}]] [Op:__inference_3]")
    assert one_line(err) == "InvalidArgumentError: Graph execution error: indices[0] = 7 is not in [0, 5)"
    assert one_line(ValueError("plain\nsecond")) == "ValueError: plain"
    assert one_line(RuntimeError()) == "RuntimeError"

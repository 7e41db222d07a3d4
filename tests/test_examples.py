"""examples/: every example runs as the README's Examples section writes it, shortened.

The README's commands are the single source of truth: the slow test runs each one
(with 1 epoch, 2 trials, on digits; each trial's Keras model and optimizer are built
from the example's hparams, the fake of tests/fakes.py stands in for fitting them) and
the fast tests check that the README, the example files and their header comments
name each other, so none of them can rot.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from hparams_lab.cli.app import main
from hparams_lab.search.hyperband import brackets, capped

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for ext in ("toml", "json") for p in (ROOT / "examples").glob(f"*.{ext}"))
QUICK = ["--epochs", "1", "--max-epochs", "1", "--trials", "2"]
OFFLINE = {"digits", "iris", "wine", "breast_cancer", "diabetes"}  # data sets a test can always load


def examples_section() -> str:
    """The '## Examples' section of README.md, or of README.examples.md until it is folded in."""
    for name in ("README.md", "README.examples.md"):
        path = ROOT / name
        if path.is_file():
            found = re.search(r"^## Examples\n(.*?)(?=^## |\Z)", path.read_text(), re.S | re.M)
            if found:
                return found.group(1)
    raise AssertionError("no '## Examples' section in README.md or README.examples.md")


def command_lines(text: str) -> list[str]:
    """Lines of the section's code blocks that run hparams_lab."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("python run.py")]


def run_args(line: str) -> list[str]:
    """'python run.py --x 1  # comment' -> ['--x', '1']."""
    return shlex.split(line, comments=True)[2:]


def option(args: list[str], flag: str) -> str | None:
    """The value click uses: the last occurrence wins."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]
    return values[-1] if values else None


def without(args: list[str], *flags: str) -> tuple[str, ...]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return tuple(out)


def studies() -> list[list[str]]:
    return [a for a in map(run_args, command_lines(examples_section())) if a[:1] not in (["review"], ["tensorboard"])]


def reviews() -> list[list[str]]:
    return [a[1:] for a in map(run_args, command_lines(examples_section())) if a[:1] == ["review"]]


def studies_of(example: Path) -> list[list[str]]:
    """The README's study commands for one example file, one per study that differs in more
    than its data set and experiment name (an mnist variant trains like its digits twin here)."""
    chosen: dict[tuple, list[str]] = {}
    for args in studies():
        if option(args, "--space") == f"examples/{example.name}":
            chosen.setdefault(without(args, "--dataset", "--experiment"), args)
    return list(chosen.values())


def header_commands(example: Path) -> list[str]:
    """'#   python run.py ...' lines of an example file's comment header (TOML only)."""
    return [line.lstrip("# ").strip() for line in example.read_text().splitlines()
            if re.match(r"#\s+python run\.py ", line)]


def test_examples_exist():
    assert EXAMPLES, "no example files found in examples/"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_a_readme_command(example):
    assert studies_of(example), f"examples/{example.name} is not run by any command in the README's Examples section"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_headers_show_readme_commands(example):
    readme = set(command_lines(examples_section()))
    for line in header_commands(example):
        assert line in readme, f"examples/{example.name}'s header shows a command the README lacks: {line}"


def test_readme_commands_name_existing_files_and_experiments():
    assert studies(), "the README's Examples section has no study commands"
    experiments = set()
    for args in studies():
        space, experiment = option(args, "--space"), option(args, "--experiment")
        assert space is not None and (ROOT / space).is_file(), f"no such example file: {shlex.join(args)}"
        assert experiment is not None, f"name the experiment so review can find it: {shlex.join(args)}"
        assert experiment not in experiments, f"two commands write experiment {experiment!r}"
        experiments.add(experiment)
    for paths in reviews():
        for path in paths:
            assert path.startswith("logs/") and path[len("logs/"):] in experiments, (
                f"review of {path}, which no example command writes")


def test_readme_mentions_only_existing_example_files():
    text = "\n".join((ROOT / name).read_text() for name in ("README.md", "README.examples.md")
                     if (ROOT / name).is_file())
    for name in set(re.findall(r"examples/[\w.-]+\.(?:toml|json|py)", text)):
        assert (ROOT / name).is_file(), f"the README names {name}, which does not exist"


def trial_records(experiment_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(experiment_dir.glob("*/trial.json"))]


@pytest.mark.slow  # builds Keras models
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(runner, tmp_path, monkeypatch, example, fake_train):
    """Each README study of the example, with 1 epoch and 2 trials on digits; then its review."""
    fake_train.configure(build=True)
    monkeypatch.chdir(ROOT)  # the README's commands run from the checkout's root
    logdir = tmp_path / "logs"
    written = {}
    for args in studies_of(example):
        dataset = option(args, "--data") or option(args, "--dataset") or "digits"
        quick = QUICK
        if dataset not in OFFLINE:
            print(f"{example.name}: runs on digits here, not {dataset} (the test must work offline)")
            quick = [*QUICK, "--data", "digits"]
        result = runner.invoke(main, [*args, *quick, "--logdir", str(logdir)])
        assert result.exit_code == 0, result.output
        runs = 2 * int(option(args, "--cv") or 1) * int(option(args, "--repeats") or 1)
        if option(args, "--strategy") in ("hyperband", "successive-halving"):  # 1 epoch: hyperband has one bracket of one configuration
            runs = sum(b.sizes[0] for b in capped(brackets(1, int(option(args, "--factor") or 3)), 2))
        assert f"{runs}/{runs} trials succeeded" in result.output, result.output
        experiment_dir = logdir / option(args, "--experiment")
        assert (experiment_dir / "experiment.json").is_file()
        trials = trial_records(experiment_dir)
        assert [t["status"] for t in trials] == ["SUCCESS"] * runs
        assert [t["epochs"] for t in trials] == [1] * runs  # --max-epochs caps 'epochs' hparams too
        written[experiment_dir.name] = [t["id"] for t in trials]
    for paths in reviews():
        names = [p[len("logs/"):] for p in paths]
        if not set(names) <= set(written):
            continue
        result = runner.invoke(main, ["review", *(str(logdir / n) for n in names)])
        assert result.exit_code == 0, result.output
        for name in names:  # side by side, review shows each experiment's best run only
            assert any(t in result.output for t in written[name]), (
                f"review {' '.join(paths)} shows no trial of {name}: {result.output}")

"""store.rundirs: closing a killed attempt leaves a session TensorBoard and review both show."""

from hparams_lab.core.trial import Trial
from hparams_lab.review import reader
from hparams_lab.store import rundirs
from hparams_lab.tb.summaries import session_group, session_start_summary
from hparams_lab.tb.writer import RunWriter

TRIAL = Trial({"units": 8}, seed=0)


def closed_sessions(logdir):
    return {row.run: (row.status, row.hparams) for row in reader.load(logdir).rows}


def test_an_attempt_killed_before_its_session_began_is_shown_as_failure(tmp_path):
    run_dir = tmp_path / "exp" / TRIAL.id
    run_dir.mkdir(parents=True)  # the process died right after creating it
    rundirs.close_cut_off(run_dir, TRIAL)
    assert closed_sessions(tmp_path) == {f"exp/{TRIAL.id}": ("FAILURE", {"units": 8})}
    assert rundirs.Attempt(run_dir, rundirs._read_record(run_dir)).status == "FAILURE"


def test_a_started_session_is_not_started_twice(tmp_path):
    run_dir = tmp_path / "exp" / TRIAL.id
    with RunWriter(run_dir) as writer:
        writer.write(session_start_summary(TRIAL, session_group("exp", TRIAL)))
    rundirs.close_cut_off(run_dir, TRIAL)
    starts = sum(path.read_bytes().count(b"session_start_info") for path in run_dir.glob("events.out.tfevents.*"))
    assert starts == 1
    assert closed_sessions(tmp_path) == {f"exp/{TRIAL.id}": ("FAILURE", {"units": 8})}

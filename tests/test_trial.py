import json

from tensorboard.plugins.hparams import api_pb2

from hparams_lab.core.trial import Trial, TrialResult, TrialStatus


def test_id_invariant_under_permutation():
    a = Trial({"units": 16, "lr": 0.01, "optimizer": "adam"}, seed=0)
    b = Trial({"optimizer": "adam", "lr": 0.01, "units": 16}, seed=0)
    assert a.id == b.id and a.group == b.group
    assert len(a.id) == 12


def test_seed_and_repeat_change_the_id_not_the_group():
    base = Trial({"units": 16}, seed=0)
    assert Trial({"units": 16}, seed=1).id != base.id
    assert Trial({"units": 16}, seed=0, repeat=1).id != base.id
    assert Trial({"units": 16}, seed=1, repeat=1).group == base.group


def test_index_is_not_identity():
    assert Trial({"units": 16}, seed=0, index=0) == Trial({"units": 16}, seed=0, index=5)


def test_result_json_roundtrip():
    result = TrialResult(Trial({"units": 16}, 3, index=2), TrialStatus.FAILURE, {"x": 1.0}, 4, 1.5, "boom")
    again = TrialResult.from_json(result.to_json())
    assert again == result
    assert again.trial.index == 2


def test_status_finished():
    assert TrialStatus.SUCCESS.is_finished() and TrialStatus.FAILURE.is_finished()
    assert not TrialStatus.RUNNING.is_finished() and not TrialStatus.UNKNOWN.is_finished()


def test_status_reads_as_its_name_in_text_and_json():
    assert str(TrialStatus.SUCCESS) == "SUCCESS" and f"{TrialStatus.PRUNED}" == "PRUNED"
    assert f"{TrialStatus.FAILURE:>8}" == " FAILURE"
    assert TrialStatus.RUNNING == "RUNNING" and json.dumps([TrialStatus.UNKNOWN]) == '["UNKNOWN"]'


def test_status_numbers_are_tensorboards():
    for status in ("UNKNOWN", "SUCCESS", "FAILURE", "RUNNING"):
        assert TrialStatus.from_tensorboard(api_pb2.Status.Value(f"STATUS_{status}")) is TrialStatus(status)
    assert TrialStatus.from_tensorboard(99) is TrialStatus.from_tensorboard(-1) is TrialStatus.UNKNOWN

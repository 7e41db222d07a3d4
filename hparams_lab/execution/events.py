"""What a study tells its reporter: the metric it ranks by, a note, a trial started, an epoch
ended, a trial finished.

The console (cli.console) prints them; tests record them; workers stay silent.
"""

from __future__ import annotations

from typing import Mapping, Protocol

from hparams_lab.core.trial import Trial, TrialResult


class Reporter(Protocol):
    def study_started(self, metric: str) -> None: ...  # once the data has decided the default metric
    def note(self, message: str) -> None: ...
    def trial_started(self, trial: Trial, position: int, total: int) -> None: ...
    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None: ...
    def trial_finished(self, result: TrialResult, position: int, total: int) -> None: ...


class SilentReporter:
    def study_started(self, metric: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def trial_started(self, trial: Trial, position: int, total: int) -> None:
        pass

    def epoch_ended(self, trial: Trial, epoch: int, logs: Mapping[str, float]) -> None:
        pass

    def trial_finished(self, result: TrialResult, position: int, total: int) -> None:
        pass

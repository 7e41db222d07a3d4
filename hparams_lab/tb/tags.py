"""The HParams plugin's tags: tensorboard.plugins.hparams.metadata's constants, written here
because importing that module loads tensorboard's TensorFlow stub (~0.15 s). tb.summaries
writes them, review.events reads them; tests pin them to tensorboard's values."""

HPARAMS_PREFIX = "_hparams_/"
EXPERIMENT_TAG = HPARAMS_PREFIX + "experiment"
SESSION_START_TAG = HPARAMS_PREFIX + "session_start_info"
SESSION_END_TAG = HPARAMS_PREFIX + "session_end_info"

"""TensorBoard's formats: pure HParams and scalar proto builders (``summaries``), TFRecord
framing (``records``) and the one writer of event files (``writer``), the logdir's union
config too. No TensorFlow."""

"""TensorBoard's formats: pure HParams proto builders (``summaries``) and the one writer of
event files (``writer``), the logdir's union config too. No TensorFlow."""

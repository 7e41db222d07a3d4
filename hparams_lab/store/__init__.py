"""The on-disk layout: experiment records, run directories (naming, scanning, closing),
resume, the experiment lock and atomic JSON. Knows nothing of Keras or of searches."""

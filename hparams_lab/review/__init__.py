"""``review``: read any TensorBoard HParams logs back, rank, filter and print them.

Never imports TensorFlow or anything that trains; everything read from logs is data.
"""


def load(logdir, **options):
    """The runs under ``logdir`` as ``review`` reads and ranks them: ``review.results.load``."""
    from hparams_lab.review.results import load as load_results

    return load_results(logdir, **options)

"""``review``: read any TensorBoard HParams logs back, rank, filter and print them.

Never imports TensorFlow or anything that trains; everything read from logs is data.
"""

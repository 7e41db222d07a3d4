"""Searches: which trials to run, asked for tasks and told their results (``base.Search``).

One module per strategy and ``registry`` to choose among them. A search decides; it
never trains, and writes nothing but what its strategy keeps (bayes' optuna journal).
"""

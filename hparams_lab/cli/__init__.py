"""The command line (``app``: the study, ``review``, ``tensorboard``, ``rerun``) and what
a study prints on the console (``console``). Loads only click until a command runs."""

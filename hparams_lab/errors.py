"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """A bad flag, space file, data set, model or path.

    The CLI prints its message as one line and exits with code 2; nothing is
    written to the logdir before it can be raised.
    """

"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """A bad flag, space file, data set, model or path.

    The CLI prints its message as one line and exits with code 2; nothing is
    written to the logdir before it can be raised.
    """


def one_line(err: BaseException) -> str:
    """'Type: first line of the message', for errors quoted inside one-line reports."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__

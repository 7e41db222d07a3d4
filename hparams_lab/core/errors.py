"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """A bad flag, space file, data set, model or path.

    The CLI prints its message as one line and exits with code 2; nothing is
    written to the logdir before it can be raised.
    """


def one_line(err: BaseException) -> str:
    """'Type: first line of the message', for errors quoted inside one-line reports.

    A first line that only announces what follows (TensorFlow's "Graph execution error:")
    gets the message's last line of substance instead of nothing: the op's own complaint,
    not its stack trace or node name.
    """
    text = str(err).strip().splitlines()
    if not text:
        return type(err).__name__
    first = text[0].strip()
    if first.endswith(":"):
        substance = [line.strip() for line in text[1:] if line.strip() and not line[:1].isspace()
                     and not line.lstrip().startswith(("File ", "[[", "Traceback", "Detected at node"))]
        if substance:
            first = f"{first} {substance[-1]}"
    return f"{type(err).__name__}: {first}"

"""How every command reports a user's mistake: one line on stderr, ``Error: ...``, exit code 2."""

from __future__ import annotations

import errno
import sys

import click

from hparams_lab.core.errors import UserError

_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # a full disk, a quota, a read-only mount
_PERMISSION_ERRORS = (errno.EACCES, errno.EPERM)  # access() can't see every refusal (root, ACLs, NFS)


def fail(message: str) -> None:
    """A user's mistake: one line on stderr, exit code 2; names from logs or spaces it quotes
    can't reach the terminal as control characters."""
    from hparams_lab.review.output import visible

    click.echo(f"Error: {visible(message)}", err=True)
    sys.exit(2)


class Command(click.Command):
    """A command whose UserErrors end as one line on stderr, exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            fail(str(err))
        except OSError as err:
            if err.errno not in _DISK_ERRORS + _PERMISSION_ERRORS:
                raise
            # Every JSON file is written atomically and every attempt is closed or left cut
            # off, so the same command resumes once the cause is gone.
            where = f" writing {err.filename!r}" if err.filename else ""
            remedy = "make room" if err.errno in _DISK_ERRORS else "make it writable"
            fail(f"{err.strerror or 'disk error'}{where}; {remedy} and run the same command again to resume")

"""What `rerun` trusts from logs: logs are untrusted data, so code they name runs only on the user's say-so.

A record names a model, a data function, callbacks and a fit as 'module:function' and
a data file by path. Before ``rerun`` imports or reads any of them:

- built-in models and named data sets are trusted;
- a module from the standard library (``os:system``, ``subprocess:getoutput``,
  ``builtins:eval``) is never accepted, nor one found inside the logdir (a plain
  directory there is a namespace package, so ``logs.evil:fn`` would import a file the
  logs brought);
- any other name runs only if the user names it again on the command line
  (``rerun PATH --model pkg.mod:fn``, which must equal the record) or confirms it at a
  terminal prompt (never when stdin is piped);
- a recorded data file outside the logdir's parent is read only on the same terms.

Nothing here imports the module it checks: where a module lives is found from
``sys.path`` with ``importlib.machinery.PathFinder``, which executes nothing.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Callable

from hparams_lab.core.errors import UserError

Confirm = Callable[[str], bool]  # asks the user a yes/no question; None: not at a terminal


def check_function(what: str, flag: str, recorded: str, given: str | None, logdir: Path,
                   confirm: Confirm | None) -> None:
    """May the recorded ``module:function`` (a model, data function, callbacks, fit) be imported?"""
    module = recorded.partition(":")[0]
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        raise UserError(f"cannot rerun: the logs name {what} {recorded!r} from the standard library, which "
                        "rerun never imports")
    inside = _found_inside(top, logdir)
    if inside is not None:
        raise UserError(f"cannot rerun: the logs name {what} {recorded!r}, whose module is inside the logdir "
                        f"({str(inside)!r}); rerun never imports code that came with the logs")
    _agreed(what, flag, recorded, given, confirm)


def check_file(recorded: str, given: str | None, logdir: Path, confirm: Confirm | None) -> None:
    """May the recorded data file be read? Inside the logdir's parent, yes; elsewhere, on the user's say-so."""
    path = Path(recorded).expanduser().resolve()
    if _within(path, logdir.resolve().parent):
        return
    if given is not None and Path(given).expanduser().resolve() == path:
        return
    _agreed("the data file", "--data", recorded, given, confirm)


def _agreed(what: str, flag: str, recorded: str, given: str | None, confirm: Confirm | None) -> None:
    if given is not None:
        if given != recorded:
            raise UserError(f"cannot rerun: {flag} {given!r} is not what the logs record ({recorded!r})")
        return
    if confirm is not None and confirm(f"The logs name {what} {recorded!r}. Import and run it?"):
        return
    raise UserError(f"cannot rerun: the logs name {what} {recorded!r}, which rerun uses only when you name it "
                    f"again: rerun TRIAL_DIR {flag} {recorded}")


def _found_inside(top: str, logdir: Path) -> Path | None:
    """Where module ``top`` would be imported from, if that is inside ``logdir``; else None."""
    root = logdir.resolve()
    loaded = sys.modules.get(top)
    if loaded is not None:
        places = [getattr(loaded, "__file__", None), *list(getattr(loaded, "__path__", []) or [])]
    else:
        search = list(sys.path)
        if os.getcwd() not in search and "" not in search:
            search.append(os.getcwd())  # training.importer looks there too
        spec = importlib.machinery.PathFinder.find_spec(top, [p or os.getcwd() for p in search])
        if spec is None:
            return None  # not importable at all: the import reports it
        places = [spec.origin, *list(spec.submodule_search_locations or [])]
    for place in places:
        if place and _within(Path(place).resolve(), root):
            return Path(place)
    return None


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

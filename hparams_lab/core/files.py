"""Reading a small .json / .toml file a user wrote (a space, a --base, --enqueue points).

Stdlib only. Every way it can go wrong is one error line naming the file: it cannot be
read, it is not UTF-8 (with the first bad byte), it is not valid JSON / TOML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hparams_lab.core.errors import UserError


def read_json_or_toml(path: str | Path, what: str, error: type[UserError] = UserError) -> Any:
    """``path``'s data, by its suffix (.json, else TOML); ``what`` names it in errors ("space file")."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise error(f"{where} cannot be read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise error(f"{where} is not UTF-8 text (byte {err.start}: {err.object[err.start:err.start + 1]!r})") from None
    is_json = path.suffix.lower() == ".json"
    import tomllib  # here: review imports this module for the domains, and reads no TOML

    try:
        return json.loads(text) if is_json else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise error(f"{where} is not valid {'JSON' if is_json else 'TOML'}: {err}") from None

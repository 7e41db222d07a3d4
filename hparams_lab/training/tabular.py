"""CSV files: a header row, the ``targets`` columns are the outputs, every other column
a numeric feature. The stdlib csv module reads them (no pandas dependency).

Errors name the cell as a user finds it in the file: its row number counting the
header as row 1 (the file's line number) and its column name.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from hparams_lab.core.errors import UserError, one_line


def read_csv(name: str, targets: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (n, features), y) from a CSV file; y is (n,) for one target, (n, k) for
    several; a target column of text is returned as str labels (class names)."""
    if not targets:
        raise UserError(f"data set {name!r}: a CSV file needs targets, the names of its "
                        "target columns (--target COLUMN)")
    header, rows = _rows(name)
    columns = {c: i for i, c in enumerate(header)}
    for target in targets:
        if target not in columns:
            hint = ("; is it separated by ';'? hparams_lab reads comma-separated files"
                    if len(header) == 1 and ";" in header[0] else "")
            raise UserError(
                f"data set {name!r} has no target column {target!r}; its columns are "
                f"{', '.join(header)}{hint}"
            )
    if len(set(targets)) != len(targets):
        raise UserError(f"data set {name!r}: targets {list(targets)} name a column twice")
    features = [c for c in header if c not in targets]
    if not features:
        raise UserError(f"data set {name!r}: every column is a target; no feature columns are left")
    if not rows:
        raise UserError(f"data set {name!r} has a header but no data rows")
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for j, column in enumerate(features):
        i = columns[column]
        for r, (line, cells) in enumerate(rows):
            x[r, j] = _number(name, line, column, cells[i])
    ys = [_target(name, rows, column, columns[column]) for column in targets]
    if len(ys) == 1:
        return x, ys[0]
    text = [c for c, y in zip(targets, ys) if y.dtype.kind == "U"]
    if text:
        raise UserError(
            f"data set {name!r}: target column {text[0]!r} holds text; with several targets "
            "every target must be numeric"
        )
    return x, np.stack([y.astype(np.float64) for y in ys], axis=1)


def _rows(name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    path = Path(name).expanduser()
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UserError(f"data set {name!r} is empty: a CSV file needs a header row")
            header = [c.strip() for c in header]
            if "" in header:
                raise UserError(
                    f"data set {name!r}: column {header.index('') + 1} of the header row has no name"
                )
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                raise UserError(f"data set {name!r}: the header names column {dupes[0]!r} twice")
            rows = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # blank lines
                if len(cells) != len(header):
                    raise UserError(
                        f"data set {name!r}: row {reader.line_num} has {len(cells)} cells "
                        f"but the header {len(header)}"
                    )
                rows.append((reader.line_num, [c.strip() for c in cells]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"data set {name!r} could not be read as a CSV file: {one_line(exc)}") from exc
    return header, rows


def _number(name: str, line: int, column: str, cell: str) -> float:
    if cell == "":
        raise UserError(
            f"data set {name!r}: row {line}, column {column!r} is empty; missing values "
            "are not supported"
        )
    try:
        value = float(cell)
    except ValueError:
        raise UserError(
            f"data set {name!r}: row {line}, column {column!r} holds {cell!r}, not a number; "
            "feature columns must be numeric"
        ) from None
    if not math.isfinite(value):
        raise UserError(
            f"data set {name!r}: row {line}, column {column!r} holds {cell!r}; every value "
            "must be a finite number"
        )
    if abs(value) > _FLOAT32_MAX:  # features are float32: it would become inf
        raise UserError(
            f"data set {name!r}: row {line}, column {column!r} holds {cell!r}, too large for "
            "the float32 a model trains on (at most about 3.4e38)"
        )
    return value


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _target(name: str, rows, column: str, i: int) -> np.ndarray:
    cells = [(line, cells[i]) for line, cells in rows]
    for line, cell in cells:
        if cell == "":
            raise UserError(
                f"data set {name!r}: row {line}, target column {column!r} is empty; missing "
                "values are not supported"
            )
    try:
        values = [float(cell) for _, cell in cells]
    except ValueError:
        return np.array([cell for _, cell in cells], dtype=str)  # class names
    for (line, cell), value in zip(cells, values):
        if not math.isfinite(value):
            raise UserError(
                f"data set {name!r}: row {line}, target column {column!r} holds {cell!r}; "
                "every value must be a finite number"
            )
    y = np.array(values, dtype=np.float64)
    return y.astype(np.int64) if np.all(y == np.round(y)) else y

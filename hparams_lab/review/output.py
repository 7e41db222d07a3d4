"""Review's tables as text, markdown, CSV and JSON, with every logged string escaped;
the study's leaderboard is rendered by the same to_text and human.

Hparam names and values, run paths and tags come from logs that get shared, so
they are untrusted: control characters never reach a terminal, markdown
cannot smuggle HTML or break its table, and a CSV cell never starts a
spreadsheet formula.
"""

import csv
import html
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass

DIGITS = 5  # significant digits of a number in review's tables
_MAX_CELL = 32  # characters of one text-table cell before it is cut with '…'
_FORMULA_STARTS = ("=", "+", "-", "@")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


@dataclass(frozen=True)
class Table:
    headers: list
    rows: list  # lists of cells: str, int, float, bool or None
    title: str = ""


def visible(text):
    """text with control and format characters (C0, C1, ESC, newlines, bidi overrides) and the
    line and paragraph separators U+2028/U+2029 written as escapes."""
    return "".join(_escape_char(char) if _hidden(unicodedata.category(char)) else char for char in str(text))


def _hidden(category):
    return category[0] == "C" or category in ("Zl", "Zp")


def _escape_char(char):
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def human(value, digits=DIGITS):
    """A cell as people read it: numbers to `digits` significant digits, '' for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return visible(value)


def to_text(table, width=None, *, digits=DIGITS, max_cell=_MAX_CELL, rule=True):
    """An aligned plain-text table; columns that do not fit in width are left out and named.

    Cells longer than max_cell are cut (None: never); rule draws a line under the headers.
    """
    cells = [[_cut(human(cell, digits), max_cell) for cell in row] for row in table.rows]
    headers = [_cut(visible(header), max_cell) for header in table.headers]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    shown = _columns_that_fit(widths, width)
    numeric = [all(_is_number(row[i]) for row in table.rows) for i in range(len(headers))]

    def line(values):
        parts = [values[i].rjust(widths[i]) if numeric[i] else values[i].ljust(widths[i]) for i in shown]
        return "  ".join(parts).rstrip()

    lines = [visible(table.title)] if table.title else []
    lines.append(line(headers))
    if rule:
        lines.append("  ".join("-" * widths[i] for i in shown))
    lines += [line(row) for row in cells]
    hidden = [headers[i] for i in range(len(headers)) if i not in shown]
    if hidden:
        lines.append(f"({len(hidden)} more column(s) not shown: {', '.join(hidden)}; "
                     "widen the terminal or use --format csv/json/markdown)")
    return "\n".join(lines) + "\n"


def _cut(text, limit):
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def _columns_that_fit(widths, width):
    shown, used = [], 0
    for i, column_width in enumerate(widths):
        if width is not None and shown and used + 2 + column_width > width:
            break
        shown.append(i)
        used += column_width + (2 if len(shown) > 1 else 0)
    return shown


def _is_number(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def markdown_cell(value):
    """A cell safe in a markdown table: no HTML, no markdown syntax, no pipes or newlines."""
    text = html.escape(human(value, digits=6), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def to_markdown(table):
    lines = [f"### {markdown_cell(table.title)}", ""] if table.title else []
    lines.append("| " + " | ".join(markdown_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if all(_is_number(row[i]) for row in table.rows) else "---"
                                for i in range(len(table.headers))) + "|")
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def csv_cell(value):
    """Numbers in full precision; text that a spreadsheet would run as a formula gets a leading '.

    Control characters are escaped as in the terminal table (CSV gets printed
    too); JSON is the format that keeps text exactly as logged.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (bool, int)):
        return str(value)
    text = visible(value)
    # A spreadsheet also runs '  =cmd' and full-width '＝cmd' (NFKC folds it to '=').
    formula = unicodedata.normalize("NFKC", text).lstrip().startswith(_FORMULA_STARTS)
    return "'" + text if formula else text


def to_csv(table):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(header) for header in table.headers])
    writer.writerows([csv_cell(cell) for cell in row] for row in table.rows)
    return out.getvalue()


def to_json(data):
    """JSON with NaN and infinities as null (JSON has no such numbers), non-ASCII escaped."""
    return json.dumps(_finite(data), indent=2) + "\n"


def _finite(data):
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {str(key): _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def render(table, output_format, width=None):
    """table as text in one of the tabular formats (json is built per view, see review.views)."""
    if output_format == "csv":
        return to_csv(table)
    if output_format == "markdown":
        return to_markdown(table)
    return to_text(table, width)

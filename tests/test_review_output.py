"""Untrusted text in every output format, the HTML report, table fitting and the hparam summary."""

import csv
import importlib.util
import io
import json
import re

import pytest
from click.testing import CliRunner

import review_samples as samples
from hparams_lab.review import output as review_output, summary as review_summary
from hparams_lab.cli.review import review
from hparams_lab.review.output import Table

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202e]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return samples.write_hostile_logs(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return samples.write_small_study(tmp_path_factory.mktemp("logs"))


def invoke(*args):
    result = CliRunner().invoke(review, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_terminal_table_passes_no_control_characters(hostile):
    output = invoke(hostile)
    assert not CONTROL.search(output)
    assert "\\x1b[31mred\\x1b]0;title\\x07" in output  # shown, escaped (and cut to the cell width)


def test_csv_neutralises_formulas_and_keeps_numbers(hostile):
    rows = list(csv.reader(io.StringIO(invoke(hostile, "--format", "csv"))))
    by_run = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert set(by_run) == {"plain", "'=1+1"}
    assert by_run["'=1+1"]["hparam:" + samples.XSS] == "'" + samples.FORMULA  # named like a metric
    assert by_run["'=1+1"][samples.XSS] == "0.75"
    assert by_run["plain"]["hparam:" + samples.XSS] == "'-2+3"
    assert by_run["plain"]["note"] == "'@SUM(A1)"
    assert by_run["plain"]["units"] == "16" and by_run["plain"]["score"] == "0.25"
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not _number(cell))]
    assert not CONTROL.search("".join(cells))


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_cell_rules():
    assert review_output.csv_cell(-0.5) == "-0.5"  # our own numbers are not formulas
    assert review_output.csv_cell("+1") == "'+1"
    assert review_output.csv_cell("\tx") == "\\x09x"
    assert review_output.csv_cell(None) == ""


def test_json_keeps_text_exactly_and_escapes_it(hostile):
    output = invoke(hostile, "--format", "json")
    runs = {run["run"]: run for run in json.loads(output)}
    assert runs["=1+1"]["hparams"] == {samples.XSS: samples.FORMULA, "note": samples.ESCAPES, "units": 8}
    assert runs["=1+1"]["best"][samples.XSS] == {"value": 0.5, "step": 0}  # 'onerror' reads as an error: lower wins
    assert not CONTROL.search(output)


def test_markdown_carries_no_html_and_no_table_breaking_pipes(hostile):
    output = invoke(hostile, "--format", "markdown")
    assert "<" not in output and ">" not in output.replace("&gt;", "")
    assert "&lt;/script&gt;&lt;img src=x onerror=alert\\(1\\)&gt;" in output
    board = next(block for block in output.split("\n\n") if block.startswith("|")).splitlines()
    assert {line.count("|") - line.count("\\|") for line in board} == {9}  # 8 columns on every line
    assert not CONTROL.search(output)


def test_text_table_fits_the_width_and_names_what_it_left_out():
    table = Table(["run", "status", "a_long_metric_name", "another"], [["r1", "SUCCESS", 0.5, 1]])
    text = review_output.to_text(table, width=30)
    assert all(len(line) <= 30 for line in text.splitlines()[:3])
    assert text.splitlines()[0].split() == ["run", "status"]
    assert "2 more column(s) not shown: a_long_metric_name, another" in text
    assert "another" in review_output.to_text(table, width=None).splitlines()[0]


def test_html_report_is_self_contained_holds_every_run_and_keeps_payloads_inert(hostile, tmp_path):
    report = tmp_path / "report.html"
    invoke(hostile, "--report", report)
    page = report.read_text(encoding="utf-8")
    assert samples.XSS not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert page.count("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") >= 3
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inline, nothing fetched
    assert "<link" not in page
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    assert "<td>plain</td>" in page and "<td>=1+1</td>" in page


def test_html_report_of_a_study_lists_every_run_and_its_charts(study, tmp_path):
    report = tmp_path / "report.html"
    invoke(study, "--report", report, "--top", "1")
    page = report.read_text(encoding="utf-8")
    assert "<td>alpha/t2</td>" in page  # the leaderboard shows the --top run
    assert '"type":"parcoords"' in page.replace(" ", "") and '"type":"scatter"' in page.replace(" ", "")
    for run in ("alpha/t1", "alpha/t2", "beta/u1"):  # the charts show every run with the metric
        assert run.replace("/", "\\u002f") + "\\u003cbr\\u003eSUCCESS" in page  # hover text in plotly's JSON


def test_report_without_plotly_says_how_to_install(study, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "plotly" else real_find_spec(name, *args))
    result = CliRunner().invoke(review, [str(study), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "pip install -e '.[report]'" in result.output
    assert not (tmp_path / "r.html").exists()


def test_epsilon_squared_known_values():
    # mean 3.5: SS_total 17, SS_within 1, SS_between 16; (16 - 1 * 1/2) / 17
    assert review_summary.epsilon_squared([[1, 2], [5, 6]]) == pytest.approx(15.5 / 17)
    assert review_summary.epsilon_squared([[1, 5], [1, 5]]) == 0.0
    assert review_summary.epsilon_squared([[1, 2, 3]]) == 0.0


class _Row:
    def __init__(self, x, value):
        self.hparams, self.value = {"x": x}, value


class _Ranking:
    maximize = True

    def value(self, row):
        return row.value


def test_many_numeric_values_are_summarised_in_ranges():
    rows = [_Row(x, float(x)) for x in range(1, 9)]
    (summary,) = review_summary.summarize(rows, ["x"], _Ranking())
    assert [(b.label, b.count, b.mean, b.best) for b in summary.buckets] == [
        ("[1, 2]", 2, 1.5, 2.0), ("[3, 4]", 2, 3.5, 4.0), ("[5, 6]", 2, 5.5, 6.0), ("[7, 8]", 2, 7.5, 8.0)]
    assert summary.importance > 0.9


@pytest.mark.parametrize("text", ["  =cmd|' /C calc'!A0", "\uff1dHYPERLINK(1)", "\u3000=1", " @SUM(A1)"])
def test_a_csv_cell_is_neutralised_after_spaces_and_in_full_width(text):
    assert review_output.csv_cell(text).startswith("'")


def test_a_huge_number_stays_a_number_in_csv():
    assert review_output.csv_cell(1e300) == "1e+300"

"""kaptrain.csvout: every CSV the site writes (reports, the audit log, evaluations, item analysis, the CLI export)
neutralises cells a spreadsheet would run as formulas, and keeps plain numbers as numbers."""

from __future__ import annotations

import csv
import io

import pytest

from kaptrain import csvout
from kaptrain.accounts.models import Role
from kaptrain.certificates import services as certificates
from kaptrain.certificates.services import EvaluationAnswers
from kaptrain.quizzes.analysis import ItemStats, QuizStats, stats_csv
from tests.factories import complete_learning, course, enrolled, make_user


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1-555-0100", "'+1-555-0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-0.250", "-0.250"),  # a negative discrimination index stays a number
        ("+12", "+12"),
        ("Dana Example, LCSW", "Dana Example, LCSW"),
        (None, ""),
        (7, "7"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value: object, written: str) -> None:
    assert csvout.cell(value) == written


def test_lines_are_the_header_then_each_row_as_csv() -> None:
    got = "".join(csvout.lines(["name", "note"], [["Ana", 'says "hi", then =1+1'], ["Bo", None]]))
    assert list(csv.reader(io.StringIO(got))) == [["name", "note"], ["Ana", 'says "hi", then =1+1'], ["Bo", ""]]
    first = list(csv.reader(io.StringIO("".join(csvout.lines(["n"], [["=1+1"]])))))
    assert first == [["n"], ["'=1+1"]]


def test_a_cell_with_a_semicolon_is_quoted_so_no_locale_splits_it_into_a_formula() -> None:
    """The attack: a learner named "Dana Ruiz;=cmd|' /C calc'!A0;" was written unquoted, and Excel in a locale
    whose list separator is ";" splits there, making the second part a formula cell."""
    name = "Dana Ruiz;=cmd|' /C calc'!A0;"
    assert csvout.cell(name) == "Dana Ruiz;'=cmd|' /C calc'!A0;"
    # The second attack: Excel honours quotes only at the start of a cell, so a later column split at its ";"
    # anyway. A formula character after a semicolon or a line break inside a cell is neutralised too.
    assert csvout.cell("LIC-77;=2+5+cmd|' /C calc'!A0;") == "LIC-77;'=2+5+cmd|' /C calc'!A0;"
    assert csvout.cell("first line\n@SUM(A1) ; -x;+1") == "first line\n'@SUM(A1) ; '-x;'+1"
    line = list(csvout.lines(["name", "licence"], [["Dana Ruiz;=cmd", "LIC;=2+3"], ["Plain Name", "LIC-1"]]))
    assert line[1] == '"Dana Ruiz;\'=cmd","LIC;\'=2+3"\r\n'
    assert line[2] == "Plain Name,LIC-1\r\n"  # nothing to quote, nothing quoted
    assert list(csv.reader(io.StringIO("".join(line))))[1] == ["Dana Ruiz;'=cmd", "LIC;'=2+3"]


def test_the_item_analysis_csv_neutralises_a_stem_and_keeps_numbers() -> None:
    item = ItemStats("q1", "=IMPORTXML(CONCAT(...))", 1, drawn=4, facility=0.5, discrimination=-0.25)
    rows = list(csv.DictReader(io.StringIO(stats_csv(QuizStats(4, 2, [], [item])))))
    assert rows[0]["stem"] == "'=IMPORTXML(CONCAT(...))"
    assert rows[0]["discrimination"] == "-0.250" and rows[0]["facility"] == "0.500"


def test_the_evaluations_csv_neutralises_a_learners_comment(app, client, db, login, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(app.config, "EVALUATION_MIN_GROUP", 1)  # one learner's comment is enough to check here
    login(make_user(db, role=Role.INSTRUCTOR))
    ids = [o["id"] for o in course(db).objectives]
    learner = make_user(db)
    enrolled(db, learner)
    answers = EvaluationAnswers(
        dict.fromkeys(ids, "met"),
        5,
        4,
        5,
        False,
        "-1+1 brand named",
        "=cmd|' /C calc'!A0",
        evidence_balanced="no",
        evidence_comment="@SUM(A1:A9) off-label use unnamed",
    )
    certificates.submit_evaluation(db, complete_learning(db, learner), answers)
    db.commit()
    body = client.get("/instructor/courses/demo-course/evaluations.csv").data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["comments"] == "'=cmd|' /C calc'!A0" and rows[0]["bias_comment"] == "'-1+1 brand named"
    assert rows[0]["evidence_comment"] == "'@SUM(A1:A9) off-label use unnamed"
    assert rows[0]["relevance"] == "5"

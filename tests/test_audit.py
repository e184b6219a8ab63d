"""The CI dependency audit (.ci/audit.py): dated exceptions, the fallback to PyPI's project endpoint, and an
honest verdict when nothing can be reached. No network: pip-audit and PyPI are replaced by fakes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import urllib.error
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 26)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_audit"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


audit = _load()

ADVISORY = {"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2026-0001"], "fixed_in": ["2.0.1"], "withdrawn": None}


def exceptions_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "audit-exceptions.toml"
    path.write_text(body, encoding="utf-8")
    return path


def entry(**changes: str) -> str:
    fields = {
        "id": '"CVE-2026-0001"',
        "package": '"Some_Package"',
        "reason": '"only reachable through a feature we never call"',
        "accepted_on": "2026-11-01",
        "review_by": "2027-01-31",
    }
    fields.update(changes)
    return "[[exception]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if v)


def test_the_shipped_exceptions_file_is_valid() -> None:
    for accepted in audit.load_exceptions(audit.EXCEPTIONS_FILE):
        assert accepted.review_by >= dt.date.today(), f"{accepted.id} needs review"


def test_an_exception_is_read_with_its_dates(tmp_path: Path) -> None:
    (accepted,) = audit.load_exceptions(exceptions_file(tmp_path, entry()))
    assert accepted.id == "CVE-2026-0001" and accepted.review_by == dt.date(2027, 1, 31)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": ""}, "missing reason"),
        ({"review_by": ""}, "missing review_by"),
        ({"accepted_on": '"2026-11-01"'}, "dates are TOML dates"),
        ({"review_by": "2026-10-01"}, "must fall after accepted_on"),
        ({"review_by": "2027-11-01"}, "at most 180 days"),
    ],
)
def test_a_malformed_exception_is_refused(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    with pytest.raises(audit.AuditConfigError, match=message):
        audit.load_exceptions(exceptions_file(tmp_path, entry(**changes)))


def test_main_exits_2_on_a_malformed_exceptions_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.main(["--exceptions", str(exceptions_file(tmp_path, "[[exception]\n"))]) == 2
    assert "audit-exceptions.toml" in capsys.readouterr().err


def finding(**changes: object) -> object:
    values: dict[str, object] = {"package": "some-package", "version": "2.0.0", "id": "GHSA-aaaa-bbbb-cccc"}
    values.update(changes)
    values.setdefault("aliases", ("CVE-2026-0001",))
    return audit.Finding(**values)


def coverage(*findings: object, unchecked: dict[str, str] | None = None, unreachable: bool = False) -> object:
    return audit.Coverage(
        findings=list(findings), checked={"some-package"}, unchecked=unchecked or {}, unreachable=unreachable
    )


def accepted(review_by: dt.date = dt.date(2027, 1, 31), id: str = "CVE-2026-0001") -> object:
    return audit.Accepted(id, "some_package", "never called", dt.date(2026, 11, 1), review_by)


def test_a_known_vulnerability_fails() -> None:
    status, lines = audit.judge(coverage(finding()), [], TODAY, strict=False)
    assert status == 1
    assert any(line.startswith("VULNERABLE some-package 2.0.0: GHSA-aaaa-bbbb-cccc") for line in lines)


def test_an_exception_accepts_a_vulnerability_by_any_alias() -> None:
    status, lines = audit.judge(coverage(finding()), [accepted()], TODAY, strict=False)
    assert status == 0 and any(line.startswith("accepted") for line in lines)


def test_an_exception_for_another_advisory_does_not_cover() -> None:
    status, _ = audit.judge(coverage(finding()), [accepted(id="CVE-2026-9999")], TODAY, strict=False)
    assert status == 1


def test_an_expired_exception_fails_even_when_it_matches() -> None:
    status, lines = audit.judge(coverage(finding()), [accepted(review_by=TODAY - dt.timedelta(days=1))], TODAY, False)
    assert status == 1 and any(line.startswith("EXPIRED exception CVE-2026-0001") for line in lines)
    assert any(line.startswith("VULNERABLE") for line in lines)


def test_an_expired_exception_fails_when_it_matches_nothing() -> None:
    status, _ = audit.judge(coverage(), [accepted(review_by=TODAY - dt.timedelta(days=1))], TODAY, strict=False)
    assert status == 1


def test_no_database_reachable_warns_loudly_but_passes_unless_strict() -> None:
    cover = audit.Coverage(unchecked={"flask": "unreachable: no route"}, unreachable=True)
    status, lines = audit.judge(cover, [], TODAY, strict=False)
    assert status == 0
    assert any("NO VULNERABILITY DATABASE COULD BE REACHED" in line for line in lines)
    assert any("flask: unreachable" in line for line in lines)
    assert audit.judge(cover, [], TODAY, strict=True)[0] == 1


def skipped_report(*names: str) -> dict[str, object]:
    return {"dependencies": [{"name": n, "skip_reason": f"Dependency not found on PyPI: {n}"} for n in names]}


def project(version: str, *vulns: dict[str, object]) -> dict[str, object]:
    return {"info": {"version": version}, "vulnerabilities": list(vulns)}


def run_audit(tmp_path: Path, runs: list[object], projects: dict[str, object]) -> object:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("newest==2.0.0\nolder[extra]==1.0.0  # comment\n", encoding="utf-8")
    dev = tmp_path / "requirements-dev.txt"
    dev.write_text("-r requirements.txt\ntool==3.0\n", encoding="utf-8")
    answers = iter(runs)

    def fetch(name: str) -> dict[str, object]:
        answer = projects[name]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    return audit.audit(
        [requirements, dev], run=lambda _args: next(answers), fetch=fetch, installed=lambda: {"transitive": "0.5"}
    )


def test_pip_audit_findings_are_reported_as_they_are(tmp_path: Path) -> None:
    report = {
        "dependencies": [
            {"name": "newest", "version": "2.0.0", "vulns": [{"id": "PYSEC-1", "aliases": [], "fix_versions": []}]},
            {"name": "older", "version": "1.0.0", "vulns": []},
            {"name": "tool", "version": "3.0", "vulns": []},
        ]
    }
    env = {"dependencies": [{"name": "transitive", "version": "0.5", "vulns": []}]}
    result = run_audit(tmp_path, [report, env], {})
    assert [(f.package, f.id) for f in result.findings] == [("newest", "PYSEC-1")]
    assert result.checked == {"newest", "older", "tool", "transitive"} and not result.unchecked


def test_skipped_packages_fall_back_to_the_newest_release_only(tmp_path: Path) -> None:
    withdrawn = {**ADVISORY, "id": "GHSA-gone", "withdrawn": "2026-01-01T00:00:00Z"}
    projects = {
        "newest": project("2.0.0", ADVISORY, withdrawn),
        "older": project("1.1.0", ADVISORY),  # its advisories are about 1.1.0, not the pinned 1.0.0
        "tool": urllib.error.URLError("no route"),
        "transitive": project("0.5"),
    }
    skipped = skipped_report("newest", "older", "tool")
    result = run_audit(tmp_path, [skipped, skipped_report("transitive")], projects)
    assert [(f.package, f.id, f.aliases) for f in result.findings] == [
        ("newest", "GHSA-aaaa-bbbb-cccc", ("CVE-2026-0001",))
    ]
    assert result.checked == {"newest", "transitive"}
    assert "pinned 1.0.0, newest is 1.1.0" in result.unchecked["older"]
    assert result.unchecked["tool"].startswith("unreachable") and not result.unreachable


def test_when_nothing_answers_one_probe_decides_and_every_package_is_unchecked(tmp_path: Path) -> None:
    asked: list[str] = []

    class Unreachable(dict[str, object]):
        def __getitem__(self, name: str) -> object:
            asked.append(name)
            return urllib.error.URLError("no route")

    result = run_audit(tmp_path, ["ConnectionError: no route", "ConnectionError: no route"], Unreachable())
    assert result.unreachable and set(result.unchecked) == {"newest", "older", "tool", "transitive"}
    assert len(asked) == 1  # no timeout per package when the index cannot be reached
    status, lines = audit.judge(result, [], TODAY, strict=False)
    assert status == 0 and any("pip-audit gave no report: ConnectionError" in line for line in lines)


def test_twin_advisories_are_reported_once() -> None:
    pysec = audit.Finding("p", "1", "PYSEC-2017-94", ("CVE-2013-7459", "GHSA-cq27-v7xp-c356"))
    ghsa = audit.Finding("p", "1", "GHSA-cq27-v7xp-c356", ("CVE-2013-7459", "PYSEC-2017-94"), ("2.0",))
    other = audit.Finding("p", "1", "PYSEC-2018-97", ("CVE-2018-6594",))
    merged = audit.merge_aliases([pysec, ghsa, other])
    assert [(f.id, f.fix_versions) for f in merged] == [("GHSA-cq27-v7xp-c356", ("2.0",)), ("PYSEC-2018-97", ())]
    assert merged[0].ids == {"GHSA-cq27-v7xp-c356", "PYSEC-2017-94", "CVE-2013-7459"}

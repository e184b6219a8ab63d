"""Dependency audit: pip-audit over the pinned requirements and the installed closure, with dated exceptions.

Fails (exit 1) on a known vulnerability unless audit-exceptions.toml accepts it with a reason and a review date
that has not passed; an expired or malformed exception fails too. How each package was checked:

1. pip-audit asks PyPI's per-release JSON API (/pypi/NAME/VERSION/json), which carries the advisories of the
   OSV database for that exact release.
2. Where that API does not answer for a package (pip-audit "skips" it: a mirror that serves only the project
   endpoint, as this workplace's does), the project endpoint /pypi/NAME/json is asked instead. Its
   advisories are those of the newest release only, so they are used only when the pin IS the newest release;
   an older pin is reported as not checked, never as clean.
3. When no vulnerability service can be reached at all, the audit says so loudly and exits 0, because a
   missing network is not a vulnerability: set AUDIT_STRICT=1 (or pass --strict) to fail instead, e.g. on a
   release machine. Packages left unchecked are listed either way.

Run it with the project's virtualenv: `make audit` (CI runs it after lint).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")
EXCEPTIONS_FILE = ROOT / "audit-exceptions.toml"
PROJECT_URL = "https://pypi.org/pypi/{name}/json"
MAX_EXCEPTION_DAYS = 180  # an accepted vulnerability is looked at again at least twice a year
EXCEPTION_FIELDS = ("id", "package", "reason", "accepted_on", "review_by")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Finding:
    """One known vulnerability in one installed or pinned release."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    source: str = "pip-audit"

    @property
    def ids(self) -> set[str]:
        """The advisory id and its aliases (CVE, GHSA, PYSEC)."""
        return {self.id, *self.aliases}


@dataclass(frozen=True)
class Accepted:
    """An entry of audit-exceptions.toml: a vulnerability accepted until a review date."""

    id: str
    package: str
    reason: str
    accepted_on: dt.date
    review_by: dt.date

    def matches(self, finding: Finding) -> bool:
        """Whether this entry covers the finding (same package, its id or one of its aliases)."""
        return canonical(self.package) == canonical(finding.package) and self.id in finding.ids


class AuditConfigError(ValueError):
    """audit-exceptions.toml cannot be used as it is."""


def load_exceptions(path: Path) -> list[Accepted]:
    """Read and check the accepted exceptions; every field is required and the dates must make sense."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AuditConfigError(f"{path.name}: {exc}") from None
    entries = data.get("exception", [])
    if not isinstance(entries, list):
        raise AuditConfigError(f"{path.name}: use [[exception]] tables")
    out = []
    for n, entry in enumerate(entries, 1):
        missing = [f for f in EXCEPTION_FIELDS if not entry.get(f)]
        if missing:
            raise AuditConfigError(f"{path.name}: exception {n}: missing {', '.join(missing)}")
        accepted_on, review_by = entry["accepted_on"], entry["review_by"]
        if not all(isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in (accepted_on, review_by)):
            raise AuditConfigError(f"{path.name}: exception {n}: dates are TOML dates, e.g. 2026-11-26 (no quotes)")
        if not accepted_on < review_by <= accepted_on + dt.timedelta(days=MAX_EXCEPTION_DAYS):
            raise AuditConfigError(
                f"{path.name}: exception {n} ({entry['id']}): review_by must fall after accepted_on and at most "
                f"{MAX_EXCEPTION_DAYS} days later"
            )
        out.append(Accepted(str(entry["id"]), str(entry["package"]), str(entry["reason"]), accepted_on, review_by))
    return out


@dataclass
class Coverage:
    """What was learned about each package."""

    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    unchecked: dict[str, str] = field(default_factory=dict)  # package -> why not
    unreachable: bool = False
    errors: list[str] = field(default_factory=list)  # pip-audit runs that gave no report


def parse_pip_audit(report: dict[str, object]) -> tuple[list[Finding], set[str], dict[str, str]]:
    """pip-audit's JSON report as findings, packages it checked, and packages it skipped (with the reason)."""
    findings: list[Finding] = []
    checked: set[str] = set()
    skipped: dict[str, str] = {}
    for dep in report.get("dependencies", []):  # type: ignore[attr-defined]
        name = canonical(dep["name"])
        if "skip_reason" in dep:
            skipped[name] = dep["skip_reason"]
            continue
        checked.add(name)
        for vuln in dep.get("vulns", []):
            findings.append(
                Finding(name, dep["version"], vuln["id"], tuple(vuln.get("aliases", ())), tuple(vuln["fix_versions"]))
            )
    return findings, checked, skipped


def run_pip_audit(args: list[str]) -> dict[str, object] | str:
    """Run pip-audit with this interpreter; its JSON report, or the reason it gave no report."""
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603 - our argv
    try:
        report: dict[str, object] = json.loads(done.stdout)
        return report
    except json.JSONDecodeError:
        lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
        return (lines[-1] if lines else f"pip-audit exited {done.returncode}").strip()


def fetch_project(name: str) -> dict[str, object]:
    """PyPI's project JSON (the newest release and its advisories)."""
    url = PROJECT_URL.format(name=name)
    with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - a fixed https URL
        data: dict[str, object] = json.load(response)
        return data


def newest_release_findings(name: str, version: str, fetch: Callable[[str], dict[str, object]]) -> list[Finding] | str:
    """The advisories of a pin that is the project's newest release; otherwise why the pin cannot be judged."""
    try:
        data = fetch(name)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        return f"unreachable: {exc}"
    latest = str(data["info"]["version"])  # type: ignore[index]
    if canonical(latest) != canonical(version):
        return f"pinned {version}, newest is {latest}: advisories for older releases are not served here"
    return [
        Finding(
            name,
            version,
            v["id"],
            tuple(v.get("aliases") or ()),
            tuple(v.get("fixed_in") or ()),
            source="pypi project (newest release)",
        )
        for v in data.get("vulnerabilities") or []  # type: ignore[attr-defined]
        if not v.get("withdrawn")
    ]


def pinned_versions(files: Iterable[Path]) -> dict[str, str]:
    """name -> version for every `name==version` line in the requirement files and the files they include."""
    out: dict[str, str] = {}
    for path in files:
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("-r "):
                out.update(pinned_versions([path.parent / line[3:].strip()]))
            elif "==" in line:
                name, version = line.split("==", 1)
                out[canonical(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return out


def installed_versions() -> dict[str, str]:
    """name -> version of everything installed next to this interpreter (the transitive closure)."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def audit(
    requirement_files: list[Path],
    run: Callable[[list[str]], dict[str, object] | str] = run_pip_audit,
    fetch: Callable[[str], dict[str, object]] = fetch_project,
    installed: Callable[[], dict[str, str]] = installed_versions,
) -> Coverage:
    """Audit the pins (and the installed closure), falling back to the project endpoint where pip-audit skipped."""
    versions = installed()
    versions.update(pinned_versions(requirement_files))  # the pins are what we claim; they win on a mismatch
    coverage = Coverage()
    req_args = [a for f in requirement_files for a in ("-r", str(f))] + ["--no-deps", "--disable-pip"]
    errors = coverage.errors
    skipped: dict[str, str] = {}
    for args in (req_args, []):  # the requirement files, then the environment running this script
        report = run(args)
        if isinstance(report, str):
            errors.append(report)
            continue
        findings, checked, skips = parse_pip_audit(report)
        coverage.findings.extend(findings)
        coverage.checked |= checked
        skipped.update(skips)
    if len(errors) == 2:  # pip-audit reached nothing: ask the project endpoint about every package
        skipped = {name: f"pip-audit: {errors[0]}" for name in versions}
    todo = sorted(name for name in skipped if name not in coverage.checked and name in versions)
    answers: list[list[Finding] | str] = []
    if todo:  # one probe first: when PyPI cannot be reached, do not wait for a timeout per package
        answers.append(newest_release_findings(todo[0], versions[todo[0]], fetch))
        if isinstance(answers[0], str) and answers[0].startswith("unreachable"):
            answers += [answers[0]] * (len(todo) - 1)
        else:
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers += pool.map(lambda n: newest_release_findings(n, versions[n], fetch), todo[1:])
    for name, answer in zip(todo, answers, strict=True):
        if isinstance(answer, str):
            coverage.unchecked[name] = answer
        else:
            coverage.checked.add(name)
            coverage.findings.extend(answer)
    for name in set(skipped) - set(versions) - coverage.checked:
        coverage.unchecked[name] = skipped[name]
    coverage.unreachable = not coverage.checked
    coverage.findings = merge_aliases(coverage.findings)
    return coverage


def merge_aliases(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per vulnerability: PyPI lists a PYSEC entry and its GHSA twin separately."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.package, f.version, f.id)):
        twin = next((m for m in merged if (m.package, m.version) == (f.package, f.version) and m.ids & f.ids), None)
        if twin is None:
            merged.append(f)
            continue
        merged[merged.index(twin)] = Finding(
            twin.package,
            twin.version,
            twin.id,
            tuple(sorted((twin.ids | f.ids) - {twin.id})),
            tuple(sorted(set(twin.fix_versions) | set(f.fix_versions))),
            twin.source,
        )
    return merged


def judge(coverage: Coverage, accepted: list[Accepted], today: dt.date, strict: bool) -> tuple[int, list[str]]:
    """Exit status and the report: 1 for an unaccepted finding or an expired exception."""
    lines = [f"WARNING: pip-audit gave no report: {error}" for error in coverage.errors]
    status = 0
    for exc in accepted:
        if exc.review_by < today:
            status = 1
            lines.append(
                f"EXPIRED exception {exc.id} ({exc.package}): review_by {exc.review_by} has passed. Upgrade, "
                "or review it and set a new date in audit-exceptions.toml."
            )
    for finding in coverage.findings:
        cover = next((a for a in accepted if a.review_by >= today and a.matches(finding)), None)
        where = f"{finding.package} {finding.version}: {finding.id}"
        aliases = f" ({', '.join(sorted(finding.aliases))})" if finding.aliases else ""
        fix = f"; fixed in {', '.join(finding.fix_versions)}" if finding.fix_versions else "; no fixed release"
        if cover is None:
            status = 1
            lines.append(f"VULNERABLE {where}{aliases}{fix} [{finding.source}]")
        else:
            lines.append(f"accepted   {where}{fix}: {cover.reason} (review by {cover.review_by})")
    for exc in accepted:
        if exc.review_by >= today and not any(exc.matches(f) for f in coverage.findings):
            lines.append(f"note: exception {exc.id} ({exc.package}) matched nothing; remove it if it is obsolete")
    if coverage.unchecked:
        lines.append(f"WARNING: {len(coverage.unchecked)} package(s) NOT checked:")
        lines.extend(f"  {name}: {why}" for name, why in sorted(coverage.unchecked.items()))
    if coverage.unreachable:
        lines.append(
            "WARNING: NO VULNERABILITY DATABASE COULD BE REACHED; nothing was audited. "
            + ("Failing (strict)." if strict else "Not failing for a missing network; AUDIT_STRICT=1 fails here.")
        )
    if strict and coverage.unchecked:
        status = 1
    lines.append(
        f"{len(coverage.checked)} package(s) checked, {len(coverage.unchecked)} not checked, "
        f"{len(coverage.findings)} known vulnerabilit{'y' if len(coverage.findings) == 1 else 'ies'}: "
        + ("FAIL" if status else "ok")
    )
    return status, lines


def main(argv: list[str] | None = None) -> int:
    """Command line: audit, print the report, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--requirement", action="append", type=Path, help="default: both requirement files")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS_FILE)
    parser.add_argument("--strict", action="store_true", default=os.environ.get("AUDIT_STRICT") == "1")
    args = parser.parse_args(argv)
    try:
        accepted = load_exceptions(args.exceptions)
    except AuditConfigError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    status, lines = judge(audit(args.requirement or list(REQUIREMENTS)), accepted, dt.date.today(), args.strict)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks: print request costs relative to a bare Flask route measured in the same run.

Shared machines are noisy, so each figure is a ratio against a baseline taken alongside it:
- a module page (Markdown already rendered and cached after the first view) vs a bare "ok" route;
- starting and grading a 10-question quiz attempt vs a bare route;
- a full `content import` of the shipped course (no changes) vs parsing the files alone;
- SQL statements per learner page (a count, not a time: the baseline for the performance work).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from kaptrain import create_app  # noqa: E402
from kaptrain.accounts import services as accounts  # noqa: E402
from kaptrain.config import PROJECT_ROOT  # noqa: E402
from kaptrain.content.files import read_content  # noqa: E402
from kaptrain.content.loader import import_content  # noqa: E402
from kaptrain.courses import services as courses  # noqa: E402
from kaptrain.migrate import upgrade  # noqa: E402
from kaptrain.quizzes import services as quizzes  # noqa: E402

ROUNDS = 7


def median_ms(fn: Callable[[], object], n: int) -> float:
    """Median over ROUNDS of the mean time of n calls, in milliseconds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) * 1000 / n)
    return statistics.median(samples)


def main() -> None:
    """Set up a throwaway database with the real course and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
                "SECRET_KEY": "bench",
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
        app.add_url_rule("/__baseline", "baseline", lambda: "ok")
        database = app.extensions["kaptrain.db"]
        upgrade(database.engine)
        files = lambda: read_content(PROJECT_ROOT / "modules", PROJECT_ROOT / "quizzes")  # noqa: E731
        session = database.new_session()
        import_content(session, files())
        user = accounts.create_user(
            session, "bench@example.org", "bench password 123", accounts.Profile("Bench Learner", "Psychologist")
        )
        course = courses.published_courses(session)[0]
        courses.acknowledge_disclosures(session, courses.enrol(session, user.id, course))
        session.commit()
        user_id = user.id
        quiz = quizzes.get_quiz(session, course.id, "pharmacology-quiz")
        courses.open_module(session, user_id, course.modules[0])
        session.commit()
        session.close()

        client = app.test_client()
        client.post("/login", data={"email": "bench@example.org", "password": "bench password 123"})
        module_url = "/courses/kap-foundations/modules/pharmacology"
        client.get(module_url)
        baseline = median_ms(lambda: client.get("/__baseline"), 200)
        module = median_ms(lambda: client.get(module_url), 30)

        def attempt_cycle() -> None:
            s = database.new_session()
            attempt = quizzes.start_attempt(s, user_id, s.merge(quiz), None)
            form = {
                f"q-{i.id}": quizzes.form_for(i, [o["id"] for o in i.revision.options if o["correct"]][:1])
                for i in attempt.items
            }
            quizzes.submit_attempt(s, attempt, form)
            s.rollback()  # leave the learner's record untouched so every cycle does the same work
            s.close()

        grading = median_ms(attempt_cycle, 10)
        parse = median_ms(files, 1)

        def reimport() -> None:
            s = database.new_session()
            import_content(s, files())
            s.rollback()
            s.close()

        reimport_ms = median_ms(reimport, 1)
        statements = statement_counts(client, database.engine)
        database.engine.dispose()

    print(f"bare route              {baseline:8.2f} ms   1.0x")
    print(f"module page             {module:8.2f} ms  {module / baseline:5.1f}x bare route")
    print(f"start + grade attempt   {grading:8.2f} ms  {grading / baseline:5.1f}x bare route")
    print(f"parse content files     {parse:8.2f} ms")
    print(f"re-import (no changes)  {reimport_ms:8.2f} ms  {reimport_ms / parse:5.1f}x parsing alone")
    print("SQL statements per page (learner with module 1 open):")
    for url, n in statements.items():
        print(f"  {n:4d}  {url}")


PAGES = (
    "/courses",
    "/courses/kap-foundations",
    "/dashboard",
    "/courses/kap-foundations/modules/pharmacology",
    "/courses/kap-foundations/quizzes/pharmacology-quiz",
)


def statement_counts(client: object, engine: object) -> dict[str, int]:
    """How many SQL statements each page issues (BEGIN/COMMIT included)."""
    out = {}
    for url in PAGES:
        seen: list[str] = []

        def count(*_args: object, seen: list[str] = seen) -> None:
            seen.append("x")

        event.listen(engine, "before_cursor_execute", count)
        client.get(url)  # type: ignore[attr-defined]
        event.remove(engine, "before_cursor_execute", count)
        out[url] = len(seen)
    return out


if __name__ == "__main__":
    main()

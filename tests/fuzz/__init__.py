"""Fuzz tests: hypothesis-generated form input and content files never give a 500, a traceback or a half-write.

Run them alone with `.venv/bin/pytest tests/fuzz` (SQLite) or with TEST_DATABASE_URL set (PostgreSQL). Each test
runs a modest number of examples so the folder stays near a minute; KAPTRAIN_FUZZ_EXAMPLES=500 runs that many
examples per test instead, for a long search by hand. With CI=1 the examples are derandomised (the same every run,
so a failure in CI reproduces locally with CI=1); otherwise each run tries new ones. Hypothesis keeps no example
database (database=None), so nothing is written into the checkout. See tests/fuzz/support.py for the settings.
"""

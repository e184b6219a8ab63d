"""A live server on a fresh SQLite database with the shipped course, and headless Debian Chromium."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from werkzeug.serving import make_server

from kaptrain import create_app
from kaptrain.accounts import services as accounts
from kaptrain.cli import DEMO_ACCOUNTS, DEMO_PASSWORD
from kaptrain.config import PROJECT_ROOT
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.db import Database, utcnow
from kaptrain.migrate import upgrade

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Screenshots go to build/screenshots (ignored by git), so running the tests changes no tracked file;
# `make screenshots` sets KAPTRAIN_SCREENSHOTS=docs/screenshots to refresh the ones the README shows.
SCREENSHOTS = PROJECT_ROOT / os.environ.get("KAPTRAIN_SCREENSHOTS", "build/screenshots")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The app on its own SQLite file, migrated, with the real course and the demo accounts."""
    db_file = tmp_path_factory.mktemp("e2e") / "e2e.sqlite3"
    app = create_app(
        {
            "ENV": "testing",
            "SECRET_KEY": "e2e-secret",
            "DATABASE_URL": f"sqlite:///{db_file}",
            "RATELIMIT_ENABLED": False,
            "CREDENTIAL_KEY_DIR": str(db_file.parent / "keys"),
        }
    )
    database: Database = app.extensions["kaptrain.db"]
    upgrade(database.engine)
    session = database.new_session()
    import_content(session, read_content(PROJECT_ROOT / "modules", PROJECT_ROOT / "quizzes"))
    for email, name, role, profession, credential in DEMO_ACCOUNTS:
        profile = accounts.Profile(name, profession, credential=credential)
        user = accounts.create_user(
            session, email, DEMO_PASSWORD, profile, role, confirmed=True, published_password=True
        )
        if user.must_use_two_factor:  # staff sign in with a code too: helpers.log_in types it
            user.totp_secret, user.totp_enabled_at = pyotp.random_base32(), utcnow()
    session.commit()
    session.close()
    return app


def _read_whole(app: Flask) -> Callable[[dict[str, Any], Any], list[bytes]]:
    """The app, with each response body read (and its file closed) before the server writes it. Werkzeug's
    development server skips closing a response when the browser drops the connection while it is reading what
    is left of the request, which leaves a static file open (a ResourceWarning, an error here) now and then."""

    def serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return serve


@pytest.fixture(scope="session")
def base_url(live_app: Flask) -> Iterator[str]:
    """Serve the app from a background thread on a free loopback port."""
    server = make_server("127.0.0.1", 0, _read_whole(live_app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    live_app.extensions["kaptrain.db"].engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (the wheel's own browser download cannot work here)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it, so its absence there is a real failure
        pytest.skip(message + " to run the browser tests")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser tests need it

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, base_url):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies) and page per test."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()

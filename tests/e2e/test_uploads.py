"""An instructor uploads an image in a real browser: the Markdown line to paste appears, the thumbnail loads
under the site's CSP, a refused SVG is explained, and both states pass axe and fit a phone."""

from __future__ import annotations

import io
import re

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import expect

from kaptrain.accounts import services as accounts
from kaptrain.accounts.models import Role
from kaptrain.cli import DEMO_PASSWORD
from kaptrain.db import utcnow
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import log_in
from tests.e2e.test_pages import AXE_OPTIONS, PHONE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def upload_dir(live_app, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The live server keeps these tests' uploads in a temporary folder (the rows stay in its database)."""
    folder = tmp_path_factory.mktemp("uploads")
    before = live_app.config["UPLOAD_DIR"]
    live_app.config["UPLOAD_DIR"] = str(folder)
    yield folder
    live_app.config["UPLOAD_DIR"] = before


def sign_in_instructor(page, live_app, email: str) -> None:  # type: ignore[no-untyped-def]
    """A new instructor of this test's own, with two-factor sign-in set up, logged in with password and code."""
    session = live_app.extensions["kaptrain.db"].new_session()
    secret = pyotp.random_base32()
    profile = accounts.Profile("Ines Browser, PhD", "Psychologist")
    user = accounts.create_user(
        session, email, DEMO_PASSWORD, profile, Role.INSTRUCTOR, confirmed=True, published_password=True
    )
    user.totp_secret, user.totp_enabled_at = secret, utcnow()
    session.commit()
    session.close()
    log_in(page, email, DEMO_PASSWORD)
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile("/login"))


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


def check_accessible(page, name: str) -> None:  # type: ignore[no-untyped-def]
    results = Axe().run(page, options=AXE_OPTIONS)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 375px"


def test_an_instructor_uploads_an_image_and_gets_its_markdown(page, live_app, upload_dir):  # type: ignore[no-untyped-def]
    sign_in_instructor(page, live_app, "uploader@example.org")
    page.goto("/author/uploads")
    page.get_by_label("Image file").set_input_files(
        {"name": "Dosing timeline.png", "mimeType": "image/png", "buffer": png()}
    )
    page.get_by_role("button", name="Upload the image").click()
    expect(page.get_by_role("status").first).to_contain_text("Uploaded “Dosing timeline.png”")
    snippet = page.locator("code.upload-snippet").first
    expect(snippet).to_have_text(re.compile(r"^!\[alt text\]\(/uploads/[0-9a-f]{32}\.png\)$"))
    thumb = page.locator("img.upload-thumb").first
    expect(thumb).to_be_visible()
    assert page.evaluate("img => img.complete && img.naturalWidth", thumb.element_handle()) == 320
    check_accessible(page, "uploads-listed")


def test_a_refused_svg_is_explained_accessibly(page, live_app, upload_dir):  # type: ignore[no-untyped-def]
    sign_in_instructor(page, live_app, "svg-uploader@example.org")
    before = sorted(upload_dir.iterdir())
    page.goto("/author/uploads")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
    page.get_by_label("Image file").set_input_files({"name": "chart.png", "mimeType": "image/png", "buffer": svg})
    page.get_by_role("button", name="Upload the image").click()
    expect(page.get_by_role("alert")).to_contain_text("SVG images are not accepted: export it as PNG")
    expect(page.get_by_label("Image file")).to_have_attribute("aria-invalid", "true")
    assert page.title().startswith("Error: ")
    assert sorted(upload_dir.iterdir()) == before
    check_accessible(page, "uploads-refused")

"""The certificate PDF and the one PDF helper: layout, wording, page sizes, safe fetching, escaping, time limit."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import segno
from flask import Blueprint, Flask
from PIL import Image
from weasyprint import HTML

from kaptrain.certificates import pdf
from kaptrain.certificates.pdf import (
    CertificateView,
    CreditDesignation,
    RefusedURL,
    RenderError,
    StaticFileFetcher,
    certificate_pdf,
    format_date,
    format_hours,
    hours_phrase,
    qr_code,
    qr_data_uri,
    render_pdf,
)
from tests.conftest import make_test_app

TEST_TEMPLATES = Path(__file__).parent / "templates"
A4_LANDSCAPE = (841.89, 595.28)
LETTER_LANDSCAPE = (792.0, 612.0)


def make_view(**changes: Any) -> CertificateView:
    """A fully accredited certificate; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "holder_name": "Maya R. Castellanos",
        "holder_credential": "PsyD, LMFT",
        "licence_number": "PSY 31522",
        "jurisdiction": "California",
        "course_title": "Foundations of Ketamine-Assisted Psychotherapy",
        "completed_on": date(2026, 3, 12),
        "ce_hours": Decimal("8"),
        "designations": [
            CreditDesignation(
                credit_type="APA",
                hours=Decimal("8"),
                statement="Kaptrain Institute is approved by the American Psychological Association to sponsor "
                "continuing education for psychologists.",
                provider_number="APA-1234",
            ),
            CreditDesignation(
                credit_type="NBCC",
                hours=Decimal("7.5"),
                statement="Kaptrain Institute has been approved by NBCC as an Approved Continuing Education Provider.",
                provider_number="ACEP 9012",
            ),
        ],
        "delivery_format": "Enduring online material",
        "provider": "Kaptrain Institute",
        "accreditation_statement": "This activity is accredited by the bodies named below.",
        "signatory_name": "Elena Marsh, PhD",
        "signatory_title": "Director of Continuing Education",
        "number": "KAP-2026-000042",
        "verification_url": "https://kaptrain.example/verify/KAP-2026-000042",
        "issued_on": date(2026, 3, 14),
        "status_note": None,
    }
    fields.update(changes)
    return CertificateView(**fields)


@pytest.fixture(scope="module")
def pdf_app(database_url: str) -> Iterator[Flask]:
    """An app (never touching its database) that can also render the test-only templates."""
    application = make_test_app(database_url)
    application.register_blueprint(Blueprint("pdf_test", __name__, template_folder=str(TEST_TEMPLATES)))
    yield application
    application.extensions["kaptrain.db"].engine.dispose()


@pytest.fixture
def app_ctx(pdf_app: Flask) -> Iterator[Flask]:
    """The PDF app with an application context pushed, as in a view or a job."""
    with pdf_app.app_context():
        yield pdf_app


@pytest.fixture(params=["fork", "thread"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test once with the render in the renderer (a forked child) and once in a worker thread. The
    renderer is forked afresh by the test's first render, so it has whatever the test patched."""
    monkeypatch.setattr(pdf, "_can_fork", lambda: request.param == "fork")
    if request.param == "fork":  # as if this process had rendered every template once (see test_first_render...)
        monkeypatch.setattr(pdf, "_warmed", _EveryKey())
    pdf.stop_renderer(kill=True)
    yield str(request.param)
    pdf.stop_renderer(kill=True)


class _EveryKey(set[object]):
    def __contains__(self, _key: object) -> bool:
        return True


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The text of a PDF as pdftotext extracts it."""
    path = tmp_path / "text.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (lines wrap wherever the layout put them)."""
    return " ".join(text.split())


def pdf_info(data: bytes, tmp_path: Path) -> dict[str, str]:
    """pdfinfo's fields for a PDF."""
    path = tmp_path / "info.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def page_size_points(data: bytes, tmp_path: Path) -> tuple[float, float]:
    """Width and height of page 1 in points."""
    match = re.match(r"([\d.]+) x ([\d.]+) pts", pdf_info(data, tmp_path)["Page size"])
    assert match, "pdfinfo printed no page size"
    return float(match[1]), float(match[2])


def embedded_files(data: bytes, tmp_path: Path) -> int:
    """How many files pdfdetach finds attached to a PDF."""
    path = tmp_path / "detach.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfdetach", "-list", str(path)], check=True, capture_output=True, text=True).stdout
    match = re.match(r"(\d+) embedded files", out)
    assert match, out
    return int(match[1])


def page_images(data: bytes, tmp_path: Path, dpi: int = 40) -> list[Path]:
    """Every page of a PDF as a PNG (pdftoppm)."""
    path = tmp_path / "pages.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(path), str(tmp_path / "page")], check=True)
    return sorted(tmp_path.glob("page-*.png"))


# --- (a) the certificate itself -------------------------------------------------------------------------------


def test_certificate_is_one_landscape_page_with_its_facts(app_ctx: Flask, tmp_path: Path) -> None:
    data = certificate_pdf(make_view(), page_size="A4")
    assert data.startswith(b"%PDF-")

    pages = page_images(data, tmp_path)
    assert len(pages) == 1
    with Image.open(pages[0]) as image:
        width, height = image.size
        assert width > height
        grey = image.convert("L")
        inked = sum(grey.histogram()[:200])  # pixels clearly darker than paper
    assert 0.01 < inked / (width * height) < 0.5, "page is blank or solid"

    text = flat(pdf_text(data, tmp_path))
    for expected in (
        "Kaptrain Institute",
        "Certificate of Completion",
        "This certifies that",
        "Maya R. Castellanos, PsyD, LMFT",
        "Licence no. PSY 31522 (California)",
        "Foundations of Ketamine-Assisted Psychotherapy",
        "Completed 12 March 2026",
        "8.0 contact hours",
        "Enduring online material",
        "This activity is accredited by the bodies named below.",
        "APA 8.0 hours. Kaptrain Institute is approved by the American Psychological Association",
        "Provider no. APA-1234",
        "NBCC 7.5 hours.",
        "Provider no. ACEP 9012",
        "Elena Marsh, PhD",
        "Director of Continuing Education",
        "KAP-2026-000042",
        "Issued 14 March 2026",
    ):
        assert expected in text, expected
    assert "https://kaptrain.example/verify/KAP-2026-000042" in "".join(text.split())


def test_certificate_embeds_the_vendored_fonts(app_ctx: Flask, tmp_path: Path) -> None:
    """The stylesheet and fonts under kaptrain/static are loaded through the restricted fetcher."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(certificate_pdf(make_view(), page_size="A4"))
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    assert "Certificate-Serif" in fonts
    assert "Certificate-Serif-Italic" in fonts
    assert "Certificate-Sans" in fonts


def test_status_note_and_missing_optional_fields(app_ctx: Flask, tmp_path: Path) -> None:
    view = make_view(holder_credential="", licence_number="", status_note="Re-issued; supersedes KAP-2026-000017")
    text = flat(pdf_text(certificate_pdf(view, page_size="A4"), tmp_path))
    assert "Maya R. Castellanos" in text
    assert "Maya R. Castellanos," not in text
    assert "Licence" not in text
    assert "Re-issued; supersedes KAP-2026-000017" in text


@pytest.mark.parametrize(
    "changes",
    [
        {"holder_name": "Alexandrina Bartholomew-Featherstonehaugh " * 5, "holder_credential": "PhD, LMFT, LPCC, NCC"},
        {"course_title": "Ketamine-Assisted Psychotherapy in Integrated Care: Screening, Consent, Integration " * 4},
        {"verification_url": "https://kaptrain.example/verify/" + "x" * 240},
        {
            "holder_name": "N" * 2000,
            "course_title": "Course " * 1500,
            "designations": [CreditDesignation("APA", Decimal(8), "Statement. " * 60, "1234")] * 6,
            "verification_url": "https://kaptrain.example/verify/" + "y" * 900,
            "status_note": "Note " * 80,
        },
    ],
    ids=["long-name", "long-title", "long-url", "absurd"],
)
def test_long_text_still_fits_one_page(app_ctx: Flask, tmp_path: Path, changes: dict[str, Any]) -> None:
    data = certificate_pdf(make_view(**changes), page_size="A4")
    assert pdf_info(data, tmp_path)["Pages"] == "1"
    text = flat(pdf_text(data, tmp_path))
    assert "KAP-2026-000042" in text  # the footer is never pushed off the page


def test_qr_code_encodes_the_verification_url(app_ctx: Flask) -> None:
    url = "https://kaptrain.example/verify/KAP-2026-000042"
    code = qr_code(url)
    assert code.error == "M"
    assert not code.is_micro
    # segno cannot decode, so check that encoding the URL independently gives the very same symbol.
    assert code.matrix == segno.make(url, error="m", micro=False).matrix
    assert code.matrix != segno.make(url + "x", error="m", micro=False).matrix
    uri = qr_data_uri(url)
    assert uri.startswith("data:image/svg+xml")
    assert "viewBox" in uri or "viewbox" in uri.lower()


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (Debian zbar-tools) is not installed")
@pytest.mark.parametrize(
    "url",
    ["https://kaptrain.example/verify/KAP-2026-000042", "https://k.example/v/" + "Ab9" * 80],
    ids=["short", "long"],
)
def test_printed_qr_code_scans(app_ctx: Flask, tmp_path: Path, url: str) -> None:
    data = certificate_pdf(make_view(verification_url=url), page_size="Letter")
    (page,) = page_images(data, tmp_path, dpi=200)
    scanned = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True, text=True)
    assert scanned.stdout.strip() == url


# --- (b) a plain certificate claims no accreditation -----------------------------------------------------------


def test_plain_certificate_claims_no_accreditation(app_ctx: Flask, tmp_path: Path) -> None:
    data = certificate_pdf(make_view(accreditation_statement=None), page_size="A4")
    text = flat(pdf_text(data, tmp_path))
    assert "Certificate of Completion" in text
    assert "Maya R. Castellanos" in text
    # "Contact hours" is accreditors' language: a plain certificate states hours of learning, and says it is not
    # approved for CE credit (a board clerk must not read it as CE credit).
    assert "8.0 hours of learning" in text and "contact hour" not in text.lower()
    assert "A certificate of completion. This activity has not been approved for continuing-education credit" in text
    lowered = text.replace("has not been approved for continuing-education credit by an accrediting body", "").lower()
    # "Continuing Education" may be in the signatory's title; the template itself must add no CE wording.
    for claim in ("accredit", "approv", "provider no", "apa", "nbcc", "continuing-education course", "ce credit"):
        assert claim not in lowered, claim
    assert pdf_info(data, tmp_path)["Pages"] == "1"


def test_the_provider_is_printed_once_when_it_is_the_signatorys_title(app_ctx: Flask, tmp_path: Path) -> None:
    provider = "Northwind Continuing Education"
    view = make_view(provider=provider, signatory_name="Dr Jo Park", signatory_title=provider)
    text = flat(pdf_text(certificate_pdf(view, page_size="A4"), tmp_path))
    assert "Dr Jo Park" in text and text.count(provider) == 1


# --- (c) page sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("page_size", "expected"), [("A4", A4_LANDSCAPE), ("Letter", LETTER_LANDSCAPE)])
def test_page_size(app_ctx: Flask, tmp_path: Path, page_size: str, expected: tuple[float, float]) -> None:
    width, height = page_size_points(certificate_pdf(make_view(), page_size=page_size), tmp_path)
    assert (width, height) == pytest.approx(expected, abs=0.5)


@pytest.mark.parametrize("page_size", ["a4", "Legal", "A4 portrait", "A4; } body { display: none"])
def test_unknown_page_size_is_refused(app_ctx: Flask, page_size: str) -> None:
    with pytest.raises(ValueError, match="page_size"):
        certificate_pdf(make_view(), page_size=page_size)


# --- (d) safe rendering -----------------------------------------------------------------------------------------


class _CountingServer(ThreadingHTTPServer):
    """A loopback HTTP server that counts every connection it accepts."""

    connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        type(self).connections += 1
        return True


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[type[_CountingServer]]:
    """A local HTTP server on a free port; the test reads .connections and .port."""
    server_class = type("Server", (_CountingServer,), {"connections": 0})
    server = server_class(("127.0.0.1", 0), _NotFound)
    server_class.port = server.server_address[1]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_class
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file that must never reach a PDF."""
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-4f1c9e\n")
    return path


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 go straight there, whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_hostile_markup_reads_no_file_and_makes_no_request(
    app_ctx: Flask, tmp_path: Path, mode: str, counting_server: Any, secret_file: Path, no_proxy: None
) -> None:
    data = render_pdf("pdf_test/hostile.html", port=counting_server.port, secret_uri=secret_file.as_uri())

    assert counting_server.connections == 0
    assert embedded_files(data, tmp_path) == 0
    text = pdf_text(data, tmp_path)
    assert "Hostile page" in text
    assert "TOP-SECRET" not in text
    hostname = Path("/etc/hostname").read_text().strip()
    if hostname:
        assert hostname not in text
    assert b"TOP-SECRET" not in data


def test_hostile_markup_check_would_catch_the_default_fetcher(
    app_ctx: Flask, tmp_path: Path, counting_server: Any, secret_file: Path, no_proxy: None
) -> None:
    """Control: WeasyPrint's own fetcher does read the file and call the server, so the test above means something."""
    html = app_ctx.jinja_env.get_template("pdf_test/hostile.html").render(
        port=counting_server.port, secret_uri=secret_file.as_uri()
    )
    data = HTML(string=html, base_url=(tmp_path / "x.html").as_uri()).write_pdf()
    assert counting_server.connections > 0
    assert embedded_files(data, tmp_path) >= 2


def test_hostile_strings_in_the_certificate_are_inert(
    app_ctx: Flask, tmp_path: Path, counting_server: Any, no_proxy: None
) -> None:
    url = f"http://127.0.0.1:{counting_server.port}"
    view = make_view(
        holder_credential=f'"><img src="{url}/a.png"><link rel="attachment" href="file:///etc/hostname">',
        course_title=f"<style>@import url({url}/b.css);</style>Course",
        verification_url=f"{url}/verify",
    )
    data = certificate_pdf(view, page_size="A4")
    assert counting_server.connections == 0
    assert embedded_files(data, tmp_path) == 0
    assert f'<img src="{url}/a.png">' in flat(pdf_text(data, tmp_path))


# --- (e) escaping -----------------------------------------------------------------------------------------------


def test_html_in_a_name_prints_as_text(app_ctx: Flask, tmp_path: Path) -> None:
    data = certificate_pdf(make_view(holder_name="<b>HTML</b><img src=x>", holder_credential=""), page_size="A4")
    assert "<b>HTML</b><img src=x>" in pdf_text(data, tmp_path)


# --- the fetcher on its own -------------------------------------------------------------------------------------


@pytest.fixture
def static_root(tmp_path: Path, secret_file: Path) -> Path:
    """A static folder with a stylesheet, a sub-folder, and symlinks pointing in and out."""
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "css" / "a.css").write_text("p { color: red }")
    (root / "inside-link.css").symlink_to(root / "css" / "a.css")
    (root / "outside-link.txt").symlink_to(secret_file)
    (root / "etc-link").symlink_to("/etc")
    return root


def test_fetcher_serves_files_under_its_root(static_root: Path) -> None:
    fetcher = StaticFileFetcher(static_root)
    for url in ((static_root / "css" / "a.css").as_uri(), (static_root / "inside-link.css").as_uri()):
        response = fetcher.fetch(url)
        assert response.read() == b"p { color: red }"
        assert response.content_type == "text/css"
    assert fetcher.fetch(f"file://localhost{static_root}/css/a.css").read() == b"p { color: red }"


def test_fetcher_serves_our_data_images(static_root: Path) -> None:
    fetcher = StaticFileFetcher(static_root)
    uri = qr_data_uri("https://kaptrain.example/verify/1")
    assert fetcher.fetch(uri).read().startswith(b"<svg")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/hostname",
        "file:///etc/passwd",
        "file:///dev/urandom",
        "{root}/../secret.txt",
        "{root}/css/../../secret.txt",
        "{root}/%2e%2e/secret.txt",
        "{root}/outside-link.txt",
        "{root}/etc-link/hostname",
        "{root}/css",
        "{root}/missing.css",
        "file://otherhost{path}/css/a.css",
        "http://127.0.0.1:9/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
        "data:text/html,<p>x</p>",
        "data:text/css,p{{}}",
        "data:application/octet-stream;base64,AAAA",
        "javascript:alert(1)",
        "kaptrain:x",
    ],
)
def test_fetcher_refuses_everything_else(static_root: Path, url: str) -> None:
    fetcher = StaticFileFetcher(static_root)
    with pytest.raises(RefusedURL):
        fetcher.fetch(url.format(root=static_root.as_uri(), path=static_root))


# --- (f) the time limit -----------------------------------------------------------------------------------------


@pytest.fixture
def slow_render(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the WeasyPrint step hang until the test ends (a thread cannot be killed, so it is released)."""
    release = threading.Event()

    def hang(*_args: Any) -> bytes:
        release.wait(60)
        return b""

    monkeypatch.setattr(pdf, "_write_pdf", hang)
    yield
    release.set()


def test_render_past_the_time_limit_raises(app_ctx: Flask, mode: str, slow_render: None) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="longer than 0.5 s"):
        certificate_pdf(make_view(), page_size="A4", timeout_seconds=0.5)
    assert time.monotonic() - started < 5
    if mode == "fork":
        assert multiprocessing.active_children() == []  # the child was killed and reaped


def test_renderer_failure_raises_render_error(app_ctx: Flask, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> bytes:
        raise OSError("pango fell over")

    monkeypatch.setattr(pdf, "_write_pdf", broken)
    with pytest.raises(RenderError, match="pango fell over"):
        certificate_pdf(make_view(), page_size="A4")


def test_both_ways_of_running_render_the_same_certificate(app_ctx: Flask, mode: str, tmp_path: Path) -> None:
    data = certificate_pdf(make_view(), page_size="A4")
    assert "KAP-2026-000042" in pdf_text(data, tmp_path)


def test_attachments_made_during_the_layout_are_attached(app_ctx: Flask, mode: str, tmp_path: Path) -> None:
    made: list[str] = []

    def sign() -> list[tuple[str, bytes, str]]:
        made.append("signed")  # called once, here, while the renderer lays the page out
        return [("credential.json", b'{"signed": true}', "a signed credential")]

    data = certificate_pdf(make_view(), page_size="A4", attachments=sign)
    assert made == ["signed"] and embedded_files(data, tmp_path) == 1
    path = tmp_path / "attached.pdf"
    path.write_bytes(data)
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "out.json"), str(path)], check=True)
    assert (tmp_path / "out.json").read_bytes() == b'{"signed": true}'


def test_attachments_that_fail_stop_the_render_and_raise_their_own_error(app_ctx: Flask, mode: str) -> None:
    def sign() -> list[tuple[str, bytes, str]]:
        raise ValueError("the signing key is unreadable")

    threads = threading.active_count()
    with pytest.raises(ValueError, match="signing key is unreadable"):
        certificate_pdf(make_view(), page_size="A4", attachments=sign)
    deadline = time.monotonic() + 10
    while (multiprocessing.active_children() or threading.active_count() > threads) and time.monotonic() < deadline:
        time.sleep(0.05)  # the renderer ends on its own once it finds no attachments coming
    assert multiprocessing.active_children() == [] and threading.active_count() == threads


def test_first_render_of_a_template_runs_in_process_then_children_inherit_it(
    app_ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf, "_warmed", set())
    monkeypatch.setattr(pdf, "_can_fork", lambda: True)
    ways: list[str] = []
    for name in ("_run_in_thread", "_run_in_renderer"):
        real = getattr(pdf, name)
        monkeypatch.setattr(pdf, name, lambda *a, real=real, name=name: ways.append(name) or real(*a))
    for _ in range(3):
        certificate_pdf(make_view(), page_size="A4")
    certificate_pdf(make_view(), page_size="Letter")
    assert ways == ["_run_in_thread", "_run_in_renderer", "_run_in_renderer", "_run_in_thread"]


def _renderer_pid() -> int:
    renderer = pdf._renderer  # noqa: SLF001
    assert renderer is not None and renderer.process.pid is not None
    return renderer.process.pid


@pytest.mark.parametrize("mode", ["fork"], indirect=True)
def test_the_renderer_renders_one_pdf_after_another(app_ctx: Flask, mode: str, tmp_path: Path) -> None:
    first = certificate_pdf(make_view(), page_size="A4")
    pid = _renderer_pid()
    second = certificate_pdf(make_view(), page_size="Letter")
    assert _renderer_pid() == pid  # the same child, no fork per PDF
    assert "KAP-2026-000042" in pdf_text(first, tmp_path) and "KAP-2026-000042" in pdf_text(second, tmp_path)
    assert page_size_points(second, tmp_path) == pytest.approx((792, 612), abs=1)


@pytest.mark.parametrize("mode", ["fork"], indirect=True)
def test_the_renderer_does_not_keep_its_parents_sockets_open(app_ctx: Flask, mode: str) -> None:
    """A worker's listening socket, client connection or database connection, open when the renderer was forked,
    closes when the worker closes it: the renderer lets go of its copies."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    certificate_pdf(make_view(), page_size="A4")  # forks the renderer while the socket is open
    assert pdf._renderer is not None and pdf._renderer.process.is_alive()  # noqa: SLF001
    server.close()
    with pytest.raises(ConnectionRefusedError):  # nobody listens any more (a copy would still take connections)
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    certificate_pdf(make_view(), page_size="A4")  # and the renderer still works


@pytest.mark.parametrize("mode", ["fork"], indirect=True)
def test_a_renderer_that_died_is_replaced(app_ctx: Flask, mode: str, tmp_path: Path) -> None:
    certificate_pdf(make_view(), page_size="A4")
    dead = pdf._renderer  # noqa: SLF001
    assert dead is not None
    dead.process.kill()  # the kernel's OOM killer, say
    dead.process.join()
    data = certificate_pdf(make_view(), page_size="A4")
    assert _renderer_pid() != dead.process.pid and "KAP-2026-000042" in pdf_text(data, tmp_path)


@pytest.mark.parametrize("mode", ["fork"], indirect=True)
def test_a_renderer_is_replaced_after_so_many_pdfs_and_exits_on_its_own(
    app_ctx: Flask, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf, "RENDERS_PER_RENDERER", 2)
    certificate_pdf(make_view(), page_size="A4")
    old = pdf._renderer  # noqa: SLF001
    certificate_pdf(make_view(), page_size="A4")
    certificate_pdf(make_view(), page_size="A4")
    assert old is not None and _renderer_pid() != old.process.pid
    assert old.process.exitcode == 0  # its pipe closed, it left its loop: not killed
    pdf.stop_renderer()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("mode", ["fork"], indirect=True)
def test_a_forked_child_does_not_use_or_stop_its_parents_renderer(app_ctx: Flask, mode: str) -> None:
    certificate_pdf(make_view(), page_size="A4")
    parents = pdf._renderer  # noqa: SLF001
    assert parents is not None
    parents.owner = -1  # as a forked child (an RQ work horse) sees its parent's renderer
    try:
        certificate_pdf(make_view(), page_size="A4")
        assert _renderer_pid() != parents.process.pid
        assert parents.process.is_alive()  # left alone: it is the parent's
    finally:
        parents.owner = os.getpid()
        parents.stop()


def test_forking_is_used_only_when_the_process_has_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert pdf._can_fork()
    monkeypatch.setattr(threading, "active_count", lambda: 3)
    assert not pdf._can_fork()


# --- formatting -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "printed"),
    [("8", "8.0"), ("8.00", "8.0"), ("1.5", "1.5"), ("0.75", "0.75"), ("12.25", "12.25"), ("0.5", "0.5")],
)
def test_format_hours(hours: str, printed: str) -> None:
    assert format_hours(Decimal(hours)) == printed


def test_format_date() -> None:
    assert format_date(date(2026, 3, 5)) == "5 March 2026"


def test_one_contact_hour_is_singular(app_ctx: Flask, tmp_path: Path) -> None:
    text = flat(pdf_text(certificate_pdf(make_view(ce_hours=Decimal("1")), page_size="A4"), tmp_path))
    assert "1.0 contact hour " in text + " "
    assert "1.0 contact hours" not in text


def test_certificate_is_a_tagged_pdf_in_the_readers_language(app_ctx: Flask, tmp_path: Path) -> None:
    """A screen reader gets the certificate's structure: pdfinfo reports it tagged, and the structure tree names
    the language, the heading and the QR code's alternative text."""
    data = certificate_pdf(make_view(), page_size="A4")
    assert pdf_info(data, tmp_path)["Tagged"] == "yes"
    path = tmp_path / "tags.pdf"
    path.write_bytes(data)
    tree = subprocess.run(["pdfinfo", "-struct-text", str(path)], check=True, capture_output=True, text=True).stdout
    heading = tree.index("H1")
    assert tree.index("Certificate of Completion", heading) < tree.index("This certifies that", heading)
    objects = _inflated(data)  # the catalogue and structure elements sit in compressed object streams
    assert b"/Lang (en)" in objects
    assert "Figure" in tree and b"/Alt (QR code linking to the verification page)" in objects


def _inflated(data: bytes) -> bytes:
    """Every Flate stream of a PDF, decompressed and joined (streams that are not Flate are left out)."""
    found = []
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.DOTALL):
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(stream.group(1)))
    return b"\n".join(found)


@pytest.mark.parametrize(
    ("hours", "said"), [("1", "1.0 hour"), ("1.00", "1.0 hour"), ("0.75", "0.75 hours"), ("8", "8.0 hours")]
)
def test_hours_are_said_with_their_unit_in_the_singular_for_one(hours: str, said: str) -> None:
    assert hours_phrase(Decimal(hours)) == said  # "You claimed 1.0 hours", a walk-through noticed

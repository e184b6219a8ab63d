"""The one PDF helper (template → WeasyPrint → bytes, static files only, time-limited) and the certificate PDF."""

from __future__ import annotations

import contextlib
import gc
import logging
import mimetypes
import multiprocessing
import os
import queue
import stat
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import segno
from flask import current_app, render_template
from weasyprint import HTML, Attachment
from weasyprint.urls import URLFetcher, URLFetcherResponse

from kaptrain.config import PAGE_SIZES

log = logging.getLogger(__name__)

# A certificate renders in about 0.2 s; 20 s means something is wrong (a pathological font or input).
RENDER_TIMEOUT = 20.0
CERTIFICATE_TEMPLATE = "certificates/pdf/certificate.html"
# Past this the printed address is cut with an ellipsis; nobody types it, and the QR code carries all of it.
MAX_PRINTED_URL = 300
# The only data: URIs our templates make are QR codes and images; nothing else is read from one.
_DATA_MEDIA_TYPES = frozenset({"image/svg+xml", "image/png"})


class RenderError(RuntimeError):
    """A PDF could not be rendered: it took longer than its time limit, or the renderer failed."""


class RefusedURL(ValueError):
    """The PDF fetcher refused a URL: only the app's static files and our data: images may be loaded."""


class StaticFileFetcher(URLFetcher):
    """A WeasyPrint fetcher that reads files under one folder and data: images, and refuses every other URL."""

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False, timeout=1)
        self.root = root.resolve()

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        """Return the resource at url if it is allowed; raise RefusedURL (WeasyPrint then skips it) otherwise."""
        try:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data":
                media_type = url[5:].split(",", 1)[0].split(";", 1)[0].strip().lower()
                if media_type not in _DATA_MEDIA_TYPES:
                    raise RefusedURL(f"data: URI of type {media_type!r}")
                response: URLFetcherResponse = super().fetch(url, headers)
                return response
            if scheme == "file":
                path = self.static_path(url)
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})
            raise RefusedURL(f"scheme {scheme!r}")
        except RefusedURL:
            log.warning("PDF renderer refused to load %.200s", url)
            raise

    def static_path(self, url: str) -> Path:
        """The real path of a file: URL if it names a regular file inside root (after .. and symlinks)."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise RefusedURL("file: URL with a host")
        # resolve() collapses ".." and follows every symlink, so what is checked is where the bytes really are.
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_relative_to(self.root):
            raise RefusedURL("outside the static folder")
        if not path.is_file():
            raise RefusedURL("not a regular file")
        return path


Attachments = Sequence[tuple[str, bytes, str]]  # (file name, bytes, description)


def render_pdf(
    template: str,
    *,
    page_size: str = "A4",
    timeout_seconds: float = RENDER_TIMEOUT,
    attachments: Attachments | Callable[[], Attachments] = (),
    **context: Any,
) -> bytes:
    """Render a template (given page_size) to PDF bytes in an app context: only static files, time-limited.

    `attachments` may be a function: it is then called here while the renderer lays the page out, and its result
    is attached when the layout is done, so that making them (signing a credential) overlaps the layout."""
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page_size must be one of {PAGE_SIZES}, not {page_size!r}")
    html = render_template(template, page_size=page_size, **context)
    static_folder = current_app.static_folder
    if static_folder is None:
        raise RenderError("the app has no static folder to load fonts and stylesheets from")
    root = Path(static_folder).resolve()
    job = _Job(html, root.as_uri() + "/", StaticFileFetcher(root))
    make = attachments if callable(attachments) else lambda: attachments
    return _run_with_time_limit(job, make, timeout_seconds, warm_key=(template, page_size))


@dataclass(frozen=True)
class _Job:
    """One PDF to write, given a way to wait for its attachments. Sent to the renderer as data: the renderer calls
    its own `_write_pdf`."""

    html: str
    base_url: str
    fetcher: URLFetcher

    def __call__(self, attachments: Callable[[], Attachments]) -> bytes:
        return _write_pdf(self.html, self.base_url, self.fetcher, attachments)


Job = Callable[[Callable[[], Attachments]], bytes]


def _write_pdf(html: str, base_url: str, fetcher: URLFetcher, attachments: Callable[[], Attachments]) -> bytes:
    # WeasyPrint 70 uses the fetcher given to HTML(); one given to write_pdf() is ignored (default fetcher!).
    # Attachments are our own bytes (string=), so nothing is fetched for them.
    document = HTML(string=html, base_url=base_url, url_fetcher=fetcher).render()
    files = [
        Attachment(string=data, name=name, description=text, relationship="Data") for name, data, text in attachments()
    ]
    # Tagged (a structure tree with the document's language, headings and the QR code's alternative text), so a
    # screen reader reads the certificate in order.
    pdf: bytes = document.write_pdf(attachments=files, pdf_tags=True)
    return pdf


def _run_with_time_limit(
    job: Job, attachments: Callable[[], Attachments], timeout_seconds: float, warm_key: Hashable = None
) -> bytes:
    """Run job in this process's renderer, a child that is killed at the limit, or in a thread where forking is
    unsafe, making the attachments meanwhile.

    The first job of each kind (template and page size) in a process runs in a thread of the process itself, so
    that the fonts, images and stylesheets it loads are in memory for the renderer forked after it: a child that
    has to load them itself takes about twice as long (bench/certificate_pdf.py)."""
    if _can_fork() and warm_key in _warmed:
        return _run_in_renderer(job, attachments, timeout_seconds)
    result = _run_in_thread(job, attachments, timeout_seconds)
    _warmed.add(warm_key)
    return result


_warmed: set[Hashable] = set()


def _can_fork() -> bool:
    # Forking copies only the calling thread: with other threads alive (threaded dev server, gthread
    # workers) a lock they hold could deadlock the child. Gunicorn sync workers and RQ work horses
    # are single-threaded, so there the render runs in a child that can really be stopped.
    return (
        hasattr(os, "fork")
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon  # daemonic processes may not have children
    )


# A renderer is replaced after this many PDFs, so whatever WeasyPrint keeps between documents cannot grow for ever.
RENDERS_PER_RENDERER = 200


class _Renderer:
    """A child forked once that renders one PDF after another (`_renderer_main`), so that a PDF pays for neither a
    fork nor the first touches of the parent's memory (copy-on-write), which made a forked render about a third
    slower than the same render in process. It belongs to the process that forked it."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(
            target=_renderer_main, args=(child_end, self.connection), name="kaptrain-pdf", daemon=True
        )
        self.process.start()
        child_end.close()
        self.owner = os.getpid()
        self.renders = 0

    def usable(self) -> bool:
        """Whether this process may send it a job (a forked child of ours has a renderer of its own)."""
        return self.owner == os.getpid() and self.process.is_alive() and self.renders < RENDERS_PER_RENDERER

    def stop(self, *, kill: bool = False) -> None:
        """Close its pipe (it exits at once when idle; kill=True for one that may be busy) and make sure it is
        gone."""
        self.connection.close()
        if kill:
            self.process.kill()
        self.process.join(1)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_renderer: _Renderer | None = None


def stop_renderer(*, kill: bool = False) -> None:
    """Stop this process's renderer, if it has one (the next PDF forks a new one)."""
    global _renderer  # noqa: PLW0603 - one renderer per process
    if _renderer is not None and _renderer.owner == os.getpid():
        _renderer.stop(kill=kill)
    _renderer = None


def _run_in_renderer(job: Job, attachments: Callable[[], Attachments], timeout_seconds: float) -> bytes:
    global _renderer  # noqa: PLW0603 - one renderer per process
    if _renderer is None or not _renderer.usable():
        stop_renderer()
        _renderer = _Renderer()
    renderer = _renderer
    answered = False
    try:
        renderer.connection.send(job)
        renderer.connection.send(list(attachments()))  # made while the renderer lays the page out
        if not renderer.connection.poll(timeout_seconds):
            raise RenderError(f"PDF rendering took longer than {timeout_seconds:g} s and was stopped")
        ok, payload = renderer.connection.recv()
        answered = True
    except (EOFError, BrokenPipeError):
        code = renderer.process.exitcode
        raise RenderError(f"PDF renderer exited without a result (exit code {code})") from None
    finally:
        renderer.renders += 1
        # Anything but an answer (past the limit, the renderer gone, the attachments failing, the caller
        # interrupted by an RQ job timeout) and the renderer is stopped: the next PDF starts from a clean one.
        if not answered:
            stop_renderer(kill=True)
    if not ok:
        raise RenderError(f"PDF rendering failed: {payload}")
    assert isinstance(payload, bytes)
    return payload


def _renderer_main(connection: Connection, parents_end: Connection) -> None:
    parents_end.close()  # so that the parent's going away (its end closed) ends the loop below
    _let_go_of_sockets(keep=connection.fileno())
    # What was inherited from the parent is never collected here: a collection walks every object, which copies
    # each page of the parent's memory it touches (copy-on-write). What the renders make is collected as usual.
    gc.freeze()
    while True:
        try:
            job = connection.recv()
        except EOFError:  # the parent stopped this renderer, or exited
            return
        try:
            connection.send((True, job(connection.recv)))
        except EOFError:  # the parent gave up before sending the attachments
            return
        except Exception as exc:  # reported to the parent, which raises RenderError and stops this renderer
            connection.send((False, f"{type(exc).__name__}: {exc}"))


def _let_go_of_sockets(keep: int) -> None:
    # A forked child holds every socket its parent had open: the server's listening socket, the connection of the
    # request being answered, the database's connections. A socket closes only when its last holder closes it, so
    # a long-lived renderer would keep connections the worker has finished with open. Each is pointed at
    # /dev/null instead of closed, so that its number stays taken (the parent's socket objects, never finalized
    # here, cannot close something else that later gets that number).
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/dev/fd"):
            fd = int(name)
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
                if fd != keep and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
    finally:
        os.close(null)


def _run_in_thread(job: Job, attachments: Callable[[], Attachments], timeout_seconds: float) -> bytes:
    results: list[bytes] = []
    errors: list[Exception] = []
    handed: queue.SimpleQueue[Attachments | None] = queue.SimpleQueue()

    def wait_for_attachments() -> Attachments:
        files = handed.get()
        if files is None:
            raise _Abandoned
        return files

    def run() -> None:
        try:
            results.append(job(wait_for_attachments))
        except _Abandoned:
            pass
        except Exception as exc:  # re-raised in the caller as RenderError
            errors.append(exc)

    # A thread cannot be stopped: past the limit the caller gets RenderError at once and the daemon
    # thread finishes (or is dropped at exit) on its own.
    thread = threading.Thread(target=run, name="kaptrain-pdf", daemon=True)
    thread.start()
    try:
        handed.put(list(attachments()))
    except BaseException:
        handed.put(None)  # the renderer stops at the attachments instead of waiting for them for ever
        raise
    thread.join(timeout_seconds)
    if thread.is_alive():
        raise RenderError(f"PDF rendering took longer than {timeout_seconds:g} s; abandoned")
    if errors:
        raise RenderError(f"PDF rendering failed: {type(errors[0]).__name__}: {errors[0]}") from errors[0]
    return results[0]


class _Abandoned(Exception):
    """Making the attachments failed: the renderer thread stops."""


@dataclass(frozen=True)
class CreditDesignation:
    """One accrediting body's credit for the course: its type, hours, approval statement and provider number."""

    credit_type: str
    hours: Decimal
    statement: str
    provider_number: str


@dataclass(frozen=True)
class CertificateView:
    """Everything printed on one certificate, already decided by the certificate service."""

    holder_name: str
    holder_credential: str
    licence_number: str
    course_title: str
    completed_on: date
    ce_hours: Decimal
    designations: Sequence[CreditDesignation]
    delivery_format: str
    provider: str
    accreditation_statement: str | None  # None: a plain certificate of completion that claims no credit
    signatory_name: str
    signatory_title: str
    number: str
    verification_url: str
    issued_on: date
    status_note: str | None = None
    jurisdiction: str = ""  # where the licence was granted, printed beside its number


def certificate_pdf(
    view: CertificateView,
    *,
    page_size: str,
    timeout_seconds: float = RENDER_TIMEOUT,
    attachments: Attachments | Callable[[], Attachments] = (),
) -> bytes:
    """The certificate as a one-page landscape PDF; attachments are (file name, bytes, description), or a function
    that makes them (see `render_pdf`)."""
    holder = f"{view.holder_name}, {view.holder_credential}" if view.holder_credential else view.holder_name
    return render_pdf(
        CERTIFICATE_TEMPLATE,
        page_size=page_size,
        timeout_seconds=timeout_seconds,
        attachments=attachments,
        cert=view,
        accredited=view.accreditation_statement is not None,
        hours=format_hours(view.ce_hours),
        # "Contact hours" is accreditors' language: a plain certificate of completion states hours of learning.
        hours_unit=_hours_unit(view.ce_hours, accredited=view.accreditation_statement is not None),
        seal_unit=_hours_unit(view.ce_hours, accredited=view.accreditation_statement is not None, short=True),
        completed_on=format_date(view.completed_on),
        issued_on=format_date(view.issued_on),
        designations=[(d, format_hours(d.hours)) for d in view.designations],
        qr_uri=qr_data_uri(view.verification_url),
        printed_url=_shorten(view.verification_url, MAX_PRINTED_URL),
        url_pt=_fit(len(view.verification_url), ((60, 6.8), (140, 6.0), (MAX_PRINTED_URL, 5.2))),
        name_pt=_fit(len(holder), ((30, 34), (42, 28), (60, 22), (90, 17))),
        title_pt=_fit(len(view.course_title), ((60, 21), (110, 18), (170, 15), (260, 12.5))),
        fine_pt=_fit(_fine_print_length(view), ((700, 9.5), (1100, 8.5), (1600, 7.5), (2400, 6.5))),
    )


def _hours_unit(hours: Decimal, *, accredited: bool, short: bool = False) -> str:
    plural = "" if hours == 1 else "s"
    if accredited:
        return f"contact hour{plural}"
    return f"hour{plural}" if short else f"hour{plural} of learning"


def qr_code(url: str) -> segno.QRCode:
    """The QR code printed on a certificate (error correction M: survives a crease or a smudge)."""
    return segno.make(url, error="m", micro=False)


def qr_data_uri(url: str) -> str:
    """The QR code for url as an SVG data: URI that scales to any printed size (viewBox, no fixed size)."""
    uri: str = qr_code(url).svg_data_uri(omitsize=True, dark="#000000", light="#ffffff")
    return uri


def format_hours(hours: Decimal) -> str:
    """Hours as printed on certificates: at least one decimal, at most two ("8.0", "1.5", "0.75")."""
    text = f"{hours.quantize(Decimal('0.01')):f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def hours_phrase(hours: Decimal) -> str:
    """Hours with their unit in words: "1.0 hour", "7.5 hours"."""
    return f"{format_hours(hours)} hour{'' if hours == 1 else 's'}"


def format_date(day: date) -> str:
    """A date no reader can misread, in either the US or the European order, as every page, email and certificate
    of the site writes it ("5 March 2026")."""
    return f"{day.day} {day:%B %Y}"


def _fit(length: int, steps: tuple[tuple[int, float], ...]) -> float:
    """The font size (pt) for a text of this length: the first step it fits in, else a smaller last resort."""
    for max_length, size in steps:
        if length <= max_length:
            return size
    return steps[-1][1] * 0.8


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fine_print_length(view: CertificateView) -> int:
    if view.accreditation_statement is None:
        return 0
    parts = [view.accreditation_statement]
    parts += [d.credit_type + d.statement + d.provider_number for d in view.designations]
    return sum(len(p) + 40 for p in parts)

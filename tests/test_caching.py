"""Caching that is always right: the content catalogue per content version (seen by a second app server on its next
request), rendered module text per revision, content-hashed static URLs with long lifetimes, compressed responses
(streamed ones too)."""

from __future__ import annotations

import gc
import gzip
import zlib
from collections.abc import Callable, Iterator

import brotli
import pytest
from flask import Flask, Response, stream_with_context, url_for
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kaptrain import cache
from kaptrain.accounts.models import Role
from kaptrain.content import catalogue, revisions
from kaptrain.content.models import Module, ModuleRevision
from kaptrain.courses.models import ModuleProgress
from kaptrain.static_assets import IMMUTABLE, SHORT
from tests.factories import make_user, set_rules

COURSE = "/courses/demo-course"
STYLESHEET = "css/kaptrain.css"


def publish_title(db: Session, slug: str, title: str) -> ModuleRevision:
    """Publish a new revision of a module with another title, as the editor or an import would."""
    module = db.scalar(select(Module).where(Module.slug == slug))
    assert module is not None
    data = revisions.revision_data(revisions.MODULE, revisions.published(db, module))  # type: ignore[arg-type]
    values = revisions.revision_values(revisions.MODULE, {**data, "title": title})
    revision = revisions.add_revision(db, module, values, None)
    revisions.publish(module, revision)
    db.flush()
    return revision  # type: ignore[return-value]


@pytest.fixture
def second_server(app: Flask, db: Session, extra_app: Callable[..., Flask]) -> Flask:
    """Another app instance (another gunicorn host) on the same database: its own process cache, the test's
    transaction."""
    other = extra_app()
    other.extensions["kaptrain.db"].bind = app.extensions["kaptrain.db"].bind
    return other


def test_a_publish_is_seen_by_every_server_on_its_next_request(app, client, db, second_server):
    other = second_server.test_client()
    assert "Module Alpha" in client.get(COURSE).text and "Module Alpha" in other.get(COURSE).text
    before = cache.content_version(db)

    publish_title(db, "alpha", "Alpha, revised")
    db.commit()

    assert cache.content_version(db) != before
    assert "Alpha, revised" in other.get(COURSE).text  # the server that did not publish
    assert "Alpha, revised" in client.get(COURSE).text


def test_the_catalogue_is_loaded_once_per_version_per_server(app, client, db, second_server, monkeypatch):
    loads: list[str | None] = []
    real = catalogue._load
    monkeypatch.setattr(catalogue, "_load", lambda s, v: loads.append(v) or real(s, v))
    other = second_server.test_client()
    for _ in range(3):
        client.get(COURSE)
        other.get(COURSE)
    assert len(loads) == 2 and loads[0] == loads[1]  # once per server
    set_rules(db, db.scalar(select(revisions.Quiz).where(revisions.Quiz.slug == "alpha-quiz")), passing_score=90)
    db.commit()
    client.get(COURSE)
    client.get(COURSE)
    assert len(loads) == 3 and loads[2] != loads[0]


def test_every_kind_of_content_change_gives_a_new_version(db):
    versions = {cache.content_version(db)}

    def changed() -> bool:
        db.flush()
        now = cache.content_version(db)
        new = now not in versions
        versions.add(now)
        return new

    publish_title(db, "beta", "Beta, revised")  # a new revision and a publish
    assert changed()
    module = db.scalar(select(Module).where(Module.slug == "gamma"))
    assert module is not None
    module.position = 9  # a plain change to a content row
    assert changed()
    db.execute(update(Module).where(Module.slug == "gamma").values(is_retired=True))  # a bulk UPDATE
    assert changed()
    db.execute(update(ModuleProgress).values(seat_seconds=ModuleProgress.seat_seconds))  # not content
    assert not changed()


def test_a_transaction_that_changed_content_neither_shares_nor_uses_the_shared_copy(app, db):
    with app.app_context():
        shared = catalogue.current(db)
        assert shared is catalogue.current(db)  # the process's copy
        publish_title(db, "alpha", "Not yet committed")
        mine = catalogue.current(db)
        assert mine is not shared and mine.by_slug("demo-course").module("alpha")[1].title == "Not yet committed"
        db.rollback()
        again = catalogue.current(db)
        assert again is shared and again.by_slug("demo-course").module("alpha")[1].title == "Module Alpha"


def test_cached_content_is_read_only(app, db):
    with app.app_context():
        module, _revision = catalogue.current(db).by_slug("demo-course").module("alpha")  # type: ignore[misc]
        assert catalogue.is_cached(module)
        with pytest.raises(RuntimeError, match="read-only"):
            db.add(module)
        with pytest.raises(RuntimeError, match="read-only"):
            db.add(ModuleProgress(user_id=1, module=module))


def test_module_text_is_rendered_once_per_revision(app, client, db, learner, monkeypatch):
    rendered: list[int] = []
    real = catalogue.render_module
    monkeypatch.setattr(catalogue, "render_module", lambda text: rendered.append(1) or real(text))
    page = f"{COURSE}/modules/alpha"
    for _ in range(3):
        assert client.get(page).status_code == 200
    assert len(rendered) == 1
    publish_title(db, "alpha", "Alpha again")
    db.commit()
    assert "Alpha again" in client.get(page).text
    assert len(rendered) == 2


def test_static_urls_carry_the_content_hash_and_live_a_year(app, client, db):
    with app.test_request_context():
        url = url_for("static", filename=STYLESHEET)
    digest = app.extensions["kaptrain.static_hashes"].digest(STYLESHEET)
    assert digest and url == f"/static/{STYLESHEET}?v={digest}"
    assert url in client.get(COURSE).text  # pages link the hashed URL

    with client.get(url) as hashed:
        assert hashed.status_code == 200 and hashed.headers["Cache-Control"] == IMMUTABLE
    for stale in (f"/static/{STYLESHEET}", f"/static/{STYLESHEET}?v=000000000000"):
        with client.get(stale) as response:
            assert response.status_code == 200 and response.headers["Cache-Control"] == SHORT
    assert client.get("/static/css/missing.css?v=1").status_code == 404


@pytest.mark.parametrize(("encoding", "decode"), [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_static_text_files_are_compressed_whole_and_closed(app, client, db, encoding, decode):
    with app.test_request_context():
        url = url_for("static", filename=STYLESHEET)
    with client.get(url) as plain:
        original = plain.get_data()
    with client.get(url, headers={"Accept-Encoding": encoding}) as packed:
        assert packed.headers["Content-Encoding"] == encoding and packed.headers["Cache-Control"] == IMMUTABLE
        assert decode(packed.get_data()) == original
        etag = packed.headers["ETag"]
    with client.get(url, headers={"Accept-Encoding": encoding, "If-None-Match": etag}) as again:
        assert again.status_code == 304
    gc.collect()  # an unclosed file would warn here (warnings are errors in this suite)


def test_pages_are_compressed_for_clients_that_accept_it(client, db):
    plain = client.get(COURSE)
    assert "Content-Encoding" not in plain.headers
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        packed = client.get(COURSE, headers={"Accept-Encoding": encoding})
        assert packed.headers["Content-Encoding"] == encoding
        assert "Accept-Encoding" in packed.headers["Vary"]
        assert int(packed.headers["Content-Length"]) < len(plain.data) / 2
        assert decode(packed.data) == plain.data
    with client.get("/favicon.ico", headers={"Accept-Encoding": "gzip"}) as small:  # under 1 KB: sent as it is
        assert "Content-Encoding" not in small.headers


def test_a_page_echoing_its_query_string_beside_the_form_token_is_not_compressed(app, client, db, login):
    """BREACH: a compressed page's size would tell, guess by guess, how much of an echoed search term matches the
    form token beside it."""
    login(make_user(db, role=Role.ADMIN))
    searched = client.get("/admin/people?q=ImMARKER", headers={"Accept-Encoding": "gzip"})
    assert searched.status_code == 200 and "ImMARKER" in searched.text and 'name="csrf_token"' in searched.text
    assert "Content-Encoding" not in searched.headers
    assert client.get("/admin/people", headers={"Accept-Encoding": "gzip"}).headers["Content-Encoding"] == "gzip"
    login_page = app.test_client().get("/login?next=/admin/people", headers={"Accept-Encoding": "gzip"})
    assert login_page.status_code == 200 and "Content-Encoding" not in login_page.headers


@pytest.fixture
def streaming_app(extra_app: Callable[..., Flask]) -> Iterator[Flask]:
    """An app with a CSV streamed in chunks, as the exports are."""
    streaming = extra_app()
    rows = [f"{i},learner {i},{'x' * 40}\n" for i in range(2000)]

    def _lines() -> Iterator[str]:
        yield "id,name,notes\n"
        yield from rows

    streaming.add_url_rule(
        "/stream.csv", "stream_csv", lambda: Response(stream_with_context(_lines()), mimetype="text/csv")
    )
    streaming.config["EXPECTED_CSV"] = "id,name,notes\n" + "".join(rows)
    yield streaming


def test_a_streamed_csv_is_compressed_as_it_streams(streaming_app):
    client = streaming_app.test_client()
    expected = streaming_app.config["EXPECTED_CSV"].encode()
    plain = client.get("/stream.csv")
    assert plain.is_streamed and plain.data == expected and "Content-Encoding" not in plain.headers
    for encoding, decode in (("br", brotli.decompress), ("deflate", zlib.decompress)):
        packed = client.get("/stream.csv", headers={"Accept-Encoding": encoding})
        assert packed.is_streamed and packed.headers["Content-Encoding"] == encoding
        assert "Content-Length" not in packed.headers
        assert decode(packed.data) == expected
    # gzip is not used for streams (Flask-Compress streams zstd, Brotli or deflate): a gzip-only client gets it plain.
    gzip_only = client.get("/stream.csv", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in gzip_only.headers and gzip_only.data == expected


def test_a_real_csv_export_streams_compressed(client, db, login):
    login(make_user(db, role=Role.ADMIN))
    plain = client.get("/admin/audit.csv")
    assert plain.status_code == 200 and plain.mimetype == "text/csv" and plain.data  # read: the stream ends
    packed = client.get("/admin/audit.csv", headers={"Accept-Encoding": "br"})
    assert packed.status_code == 200
    body = brotli.decompress(packed.data) if packed.headers.get("Content-Encoding") == "br" else packed.data
    assert body.splitlines()[0] == plain.data.splitlines()[0]

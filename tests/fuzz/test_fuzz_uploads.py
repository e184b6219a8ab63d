"""The image upload page (kaptrain/authoring/uploads.py) with hostile files: random bytes under any name, image
magic numbers followed by junk, real images cut short or with bytes changed, headers that claim huge sizes, SVG
with script, empty files. Each answer is below 500 and readable; a refusal (400) says why, leaves no row and no
file; an accepted file is a real image, stored under a generated name and served back as one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from kaptrain.accounts.models import Role
from kaptrain.authoring.models import Upload
from tests.authoring.test_uploads import png_header_only
from tests.factories import make_user
from tests.fuzz.support import (
    app_errors,
    assert_readable,
    bound_connection,
    changed_tables,
    file_names,
    fingerprint,
    fuzz,
    rolled_back,
)

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

UPLOAD_EXAMPLES = 40


def _image(fmt: str, size: tuple[int, int] = (24, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, fmt)
    return out.getvalue()


REAL = [_image("PNG"), _image("JPEG"), _image("GIF"), _image("WEBP")]
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"RIFF\x00\x00\x00\x00WEBP"]
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real image with bytes changed, cut short, or with bytes put in."""
    data = bytearray(draw(st.sampled_from(REAL)))
    how = draw(st.sampled_from(["flip", "cut", "insert"]))
    at = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        data[at] ^= draw(st.integers(1, 255))
    elif how == "cut":
        del data[at:]
    else:
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


file_bytes = st.one_of(
    st.binary(max_size=4096),
    st.tuples(st.sampled_from(MAGIC), st.binary(max_size=512)).map(lambda t: t[0] + t[1]),
    damaged(),
    st.sampled_from(REAL),
    st.tuples(st.integers(1, 70_000), st.integers(1, 70_000)).map(lambda t: png_header_only(*t)),
    st.sampled_from([b"", SVG, b"<?xml version='1.0'?>" + SVG, b"GIF89a" + SVG]),
)


@pytest.fixture
def instructor(client: FlaskClient, db: Session, login: object) -> FlaskClient:
    """The client, signed in as an instructor."""
    person = make_user(db, role=Role.INSTRUCTOR)
    db.commit()
    login(person)  # type: ignore[operator]
    return client


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_upload_page_survives_hostile_files(
    app: Flask, db: Session, instructor: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file: a readable answer; refused, nothing kept; accepted, a real image that is served back."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(folder))
    before = fingerprint(bound_connection(app))

    def check(data: bytes, name: str, field: str) -> None:
        files_before = _files(folder)
        body = MultiDict([(field, FileStorage(io.BytesIO(data), filename=name))])
        boundary, encoded = encode_multipart(body)
        with rolled_back(app, [instructor]) as conn, app_errors() as errors:
            response = instructor.post(
                "/author/uploads", data=encoded, content_type=f"multipart/form-data; boundary={boundary}"
            )
            context = f"upload of {len(data)} bytes named {name!r} as {field!r}"
            event(f"answered {response.status_code}")  # --hypothesis-show-statistics shows the mix
            try:
                assert_readable(response, context, errors)
                if response.status_code >= 400:
                    assert response.status_code in (400, 413), context
                    assert not changed_tables(before, fingerprint(conn)), f"{context}: refused but kept a row"
                    assert _files(folder) == files_before, f"{context}: refused but left a file"
                    return
                assert response.status_code == 302, context
                stored = conn.execute(select(Upload.stored_name).order_by(Upload.id.desc())).scalars().first()
                assert stored is not None and (folder / stored).is_file()
                with Image.open(folder / stored) as image:
                    image.verify()
                served = instructor.get(f"/uploads/{stored}")
                assert served.status_code == 200 and served.mimetype.startswith("image/"), context
                served.close()
            finally:
                response.close()

    test = given(
        data=file_bytes,
        name=file_names,
        field=st.sampled_from(["file", "file", "file", "image", "file[]"]),
    )(check)
    # A header claiming 70,000 x 70,000 pixels, and an image under a name with NUL and a path in it.
    test = example(data=png_header_only(70_000, 70_000), name="bomb.png", field="file")(test)
    test = example(data=REAL[0], name="../../a\x00.png", field="file")(test)
    fuzz(UPLOAD_EXAMPLES)(test)()

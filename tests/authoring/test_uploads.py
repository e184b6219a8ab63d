"""Image uploads for module text: only real PNG, JPEG, GIF and WebP images within the limits are kept, under a
generated name, deduplicated by content, and served from /uploads/<name> with a fixed type; every refusal says
why on the page (status 400) and leaves no row and no file."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from kaptrain.accounts.models import Role
from kaptrain.audit import AuditEntry
from kaptrain.authoring import uploads
from kaptrain.authoring.models import Upload
from kaptrain.content.render import render_markdown
from tests.factories import make_user

SNIPPET = re.compile(r"!\[alt text\]\(/uploads/([0-9a-f]{32}\.(?:png|jpg|gif|webp))\)")


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), **save: object) -> bytes:
    """A small real image in the given Pillow format."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, fmt, **save)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims this size, with one tiny compressed row: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'
)


@pytest.fixture
def upload_dir(app, tmp_path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """Uploads go to a temporary folder for the test."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(folder))
    return folder


@pytest.fixture
def instructor(db, login):  # type: ignore[no-untyped-def]
    user = make_user(db, Role.INSTRUCTOR, full_name="Ines Instructor, PhD")
    db.commit()
    return login(user)


def post(client, data: bytes, name: str = "picture.png", content_type: str = "image/png"):  # type: ignore[no-untyped-def]
    return client.post(
        "/author/uploads",
        data={"file": (io.BytesIO(data), name, content_type)},
        content_type="multipart/form-data",
    )


def stored_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def upload_count(db) -> int:  # type: ignore[no-untyped-def]
    return db.scalar(select(func.count()).select_from(Upload)) or 0


# ---------------------------------------------------------------- who may upload


def test_learners_get_403_and_anonymous_visitors_are_sent_to_log_in(client, db, learner, upload_dir):
    assert client.get("/author/uploads").status_code == 403
    assert post(client, image_bytes("PNG")).status_code == 403
    assert upload_count(db) == 0 and stored_files(upload_dir) == []
    client.post("/logout")
    response = client.get("/author/uploads")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [Role.INSTRUCTOR, Role.ADMIN])
def test_staff_see_the_form_and_the_rules(client, db, login, role, upload_dir):
    login(make_user(db, role))
    page = client.get("/author/uploads")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Upload an image" in text and 'enctype="multipart/form-data"' in text
    assert "PNG, JPEG, GIF or WebP, at most 2 MB and 4000 × 4000 pixels" in text
    assert "SVG is not accepted: export it as PNG" in text


# ---------------------------------------------------------------- accepted images


def test_an_uploaded_png_is_stored_under_a_generated_name_and_listed_with_its_markdown(
    client, db, instructor, upload_dir
):
    data = image_bytes("PNG", (120, 80))
    response = post(client, data, name="../../etc/Ward round.png")
    row = db.scalars(select(Upload)).one()
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/author/uploads#upload-{row.id}")
    assert re.fullmatch(r"[0-9a-f]{32}\.png", row.stored_name)
    assert (row.original_name, row.content_type, row.width, row.height) == ("Ward round.png", "image/png", 120, 80)
    assert row.size_bytes == len(data) and row.uploaded_by_id == instructor.id
    assert stored_files(upload_dir) == [upload_dir / row.stored_name]
    assert (upload_dir / row.stored_name).read_bytes() == data  # no metadata: stored byte for byte
    page = client.get("/author/uploads").get_data(as_text=True)
    assert (
        "Uploaded “Ward round.png”. Copy its Markdown line from the highlighted row below into a module&#39;s text."
        in page
    )
    assert f'<code class="upload-snippet" id="snippet-{row.id}">![alt text](/uploads/{row.stored_name})</code>' in page
    assert "120 × 80 pixels" in page and "by Ines Instructor, PhD" in page
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "upload.add")).one()
    assert entry.subject_id == row.id and entry.actor_id == instructor.id
    assert entry.details["original_name"] == "Ward round.png"


@pytest.mark.parametrize(
    ("fmt", "extension", "content_type"),
    [
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
    ],
)
def test_the_type_comes_from_the_bytes_not_the_name_or_the_browser(
    client, db, instructor, upload_dir, fmt, extension, content_type
):
    # Every file claims to be a PDF named .txt: the bytes decide.
    response = post(client, image_bytes(fmt), name="notes.txt", content_type="application/pdf")
    assert response.status_code == 302
    row = db.scalars(select(Upload)).one()
    assert row.stored_name.endswith(f".{extension}") and row.content_type == content_type


def test_the_same_image_twice_is_kept_once(client, db, instructor, upload_dir):
    data = image_bytes("GIF")
    post(client, data, name="first.gif")
    response = post(client, data, name="second.gif")
    assert response.status_code == 302
    assert upload_count(db) == 1 and len(stored_files(upload_dir)) == 1
    page = client.get("/author/uploads").get_data(as_text=True)
    assert "This image was uploaded before (as “first.gif”): use its Markdown below." in page


def test_a_lost_file_is_written_again_when_the_same_image_is_uploaded(client, db, instructor, upload_dir):
    data = image_bytes("PNG")
    post(client, data)
    (lost,) = stored_files(upload_dir)
    lost.unlink()
    post(client, data)
    assert lost.read_bytes() == data and upload_count(db) == 1


def test_a_photo_loses_its_exif_and_stays_upright(client, db, instructor, upload_dir):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # a GPS latitude
    data = image_bytes("JPEG", (60, 20), exif=exif, comment=b"taken at home")
    assert b"PhoneMaker" in data
    post(client, data, name="photo.jpg")
    row = db.scalars(select(Upload)).one()
    stored = (upload_dir / row.stored_name).read_bytes()
    assert b"PhoneMaker" not in stored and b"taken at home" not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.format == "JPEG" and not im.getexif() and im.size == (20, 60)
    assert (row.width, row.height, row.size_bytes) == (20, 60, len(stored))


def test_a_camera_mpo_is_a_jpeg_stored_as_its_first_picture_without_metadata(client, db, instructor, upload_dir):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    first, second = Image.new("RGB", (30, 20), "red"), Image.new("RGB", (30, 20), "blue")
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second], exif=exif)
    assert post(client, out.getvalue(), name="IMG_0001.JPG").status_code == 302
    row = db.scalars(select(Upload)).one()
    assert row.stored_name.endswith(".jpg") and row.content_type == "image/jpeg"
    stored = (upload_dir / row.stored_name).read_bytes()
    with Image.open(io.BytesIO(stored)) as im:
        assert im.format == "JPEG" and getattr(im, "n_frames", 1) == 1 and b"PhoneMaker" not in stored


def test_an_animated_gif_is_kept_byte_for_byte(client, db, instructor, upload_dir):
    frames = [Image.new("P", (24, 24), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    post(client, out.getvalue(), name="spinner.gif")
    row = db.scalars(select(Upload)).one()
    assert (upload_dir / row.stored_name).read_bytes() == out.getvalue() and row.content_type == "image/gif"


def test_a_png_loses_its_text_chunks_losslessly(client, db, instructor, upload_dir):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient initials J.D.")
    original = Image.new("RGBA", (16, 16), (10, 20, 30, 128))
    out = io.BytesIO()
    original.save(out, "PNG", pnginfo=info)
    post(client, out.getvalue())
    row = db.scalars(select(Upload)).one()
    stored = (upload_dir / row.stored_name).read_bytes()
    assert b"patient initials" not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.mode == "RGBA" and im.tobytes() == original.tobytes()


# ---------------------------------------------------------------- refused files


TOO_MANY_PIXELS = "images may be at most 4000 pixels wide or high and 16 megapixels in all"


@pytest.mark.parametrize(
    ("data", "name", "content_type", "message"),
    [
        (b"just some text\n", "photo.png", "image/png", "The file is not a PNG, JPEG, GIF or WebP image."),
        (b"%PDF-1.7\n...", "scan.jpg", "image/jpeg", "The file is not a PNG, JPEG, GIF or WebP image."),
        (SVG, "diagram.svg", "image/svg+xml", "SVG images are not accepted: export it as PNG"),
        (SVG, "diagram.png", "image/png", "SVG images are not accepted: export it as PNG"),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "d.gif", "image/gif", "SVG images are not"),
        (b"", "empty.png", "image/png", "The file is empty. Choose a PNG, JPEG, GIF or WebP image."),
        (image_bytes("PNG")[:60], "cut.png", "image/png", "begins like a PNG image but cannot be read"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "junk.png", "image/png", "cannot be read as one"),
        (b"GIF89a<script>alert(1)</script>", "polyglot.gif", "image/gif", "begins like a GIF image"),
        (image_bytes("BMP"), "old.png", "image/png", "The file is not a PNG, JPEG, GIF or WebP image."),
        (image_bytes("PNG", (4001, 10)), "wide.png", "image/png", "The image is 4001 × 10 pixels; " + TOO_MANY_PIXELS),
        (png_header_only(5000, 5000), "big.png", "image/png", "The image is 5000 × 5000 pixels; " + TOO_MANY_PIXELS),
        (png_header_only(100_000, 100_000), "bomb.png", "image/png", "more pixels than Pillow will decode"),
    ],
    ids=[
        "text",
        "pdf",
        "svg",
        "svg-named-png",
        "svg-with-bom",
        "empty",
        "truncated-png",
        "png-magic-then-junk",
        "gif-magic-then-script",
        "bmp",
        "too-wide",
        "too-many-pixels-declared",
        "decompression-bomb",
    ],
)
def test_refused_files_say_why_and_leave_nothing(client, db, instructor, upload_dir, data, name, content_type, message):
    response = post(client, data, name=name, content_type=content_type)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message.replace("“", "") in text.replace("&#34;", '"')
    assert "<title>Error: " in text and "Please correct the following" in text
    assert 'aria-invalid="true"' in text
    assert upload_count(db) == 0 and stored_files(upload_dir) == []


def test_a_form_without_a_file_asks_for_one(client, db, instructor, upload_dir):
    response = client.post("/author/uploads", data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose an image file to upload." in response.get_data(as_text=True)
    assert upload_count(db) == 0


def test_a_file_over_the_size_limit_is_refused(client, db, instructor, upload_dir, app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1_500)
    data = image_bytes("PNG", (300, 300), compress_level=0)
    assert len(data) > 1_500
    response = post(client, data)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"The file is {uploads.file_size(len(data))}; images may be at most 1.5 kB. Make it smaller" in text
    assert upload_count(db) == 0 and stored_files(upload_dir) == []


@pytest.mark.parametrize("csrf", [False, True], ids=["in-the-view", "in-the-csrf-check"])
def test_a_request_over_the_site_limit_gets_the_image_limit(client, db, instructor, upload_dir, request, csrf):
    if csrf:
        request.getfixturevalue("csrf_on")  # the body is then read (and refused) before the view runs
    # Encoded in memory: the test client would spool a body this size to a temporary file it never closes.
    big = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024))
    boundary, body = encode_multipart({"file": FileStorage(big, "big.png", content_type="image/png")})
    response = client.post("/author/uploads", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert "Images may be at most 2 MB. Make the file smaller and upload it again." in response.get_data(as_text=True)
    assert upload_count(db) == 0 and stored_files(upload_dir) == []


def test_the_size_limit_is_a_setting_that_widens_the_request_limit(extra_app):
    app = extra_app(UPLOAD_MAX_BYTES=5_000_000)
    assert app.config["UPLOAD_MAX_BYTES"] == 5_000_000
    assert app.config["MAX_CONTENT_LENGTH"] >= 5_000_000 + 64 * 1024
    with app.test_request_context():
        assert uploads.file_size(app.config["UPLOAD_MAX_BYTES"]) == "5 MB"


def test_an_upload_without_the_form_token_is_refused(client, db, instructor, upload_dir, csrf_on):
    response = post(client, image_bytes("PNG"))
    assert response.status_code == 400
    assert upload_count(db) == 0 and stored_files(upload_dir) == []


def test_pillow_own_bomb_check_is_refused_not_logged(monkeypatch):
    # Were the site's limits ever raised past Pillow's, its DecompressionBombWarning is an error here.
    monkeypatch.setattr(uploads, "MAX_SIDE", 10**6)
    monkeypatch.setattr(uploads, "MAX_PIXELS", 10**12)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(uploads.UploadRefused, match="more pixels than Pillow will decode"):
        uploads.check_image(image_bytes("PNG", (40, 30)), 10**6)  # 1,200 pixels: a warning only, by default


def test_the_generated_name_is_what_the_renderer_accepts():
    for image_type in uploads.ACCEPTED.values():
        name = uploads.generated_name(image_type)
        html = render_markdown(f"![A chart](/uploads/{name})")
        assert f'<img src="/uploads/{name}" alt="A chart">' in html
    assert uploads.generated_name(uploads.ACCEPTED["PNG"]) != uploads.generated_name(uploads.ACCEPTED["PNG"])


@pytest.mark.parametrize(
    ("given", "shown"),
    [("C:\\Users\\me\\chart.png", "chart.png"), ("a\x00b\u202e.png", "ab.png"), ("", "image"), ("x" * 300, "x" * 255)],
)
def test_the_original_name_is_only_a_label(given, shown):
    assert uploads.clean_original_name(given) == shown


# ---------------------------------------------------------------- serving


def test_an_upload_is_served_publicly_with_its_stored_type(client, db, instructor, upload_dir):
    data = image_bytes("WEBP")
    post(client, data, name="chart.png", content_type="image/png")
    name = db.scalars(select(Upload.stored_name)).one()
    client.post("/logout")
    response = client.get(f"/uploads/{name}")
    body = response.get_data()
    response.close()  # the file it streamed from
    assert response.status_code == 200 and body == data
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == "inline"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/uploads/0123456789abcdef0123456789abcdef.png",  # the right shape, but no such upload
        "/uploads/0123456789ABCDEF0123456789ABCDEF.png",
        "/uploads/0123456789abcdef0123456789abcdef.svg",
        "/uploads/0123456789abcdef0123456789abcdef.png.html",
        "/uploads/..%2F..%2Fkaptrain.sqlite3",
        "/uploads/.incoming-x",
        "/uploads/",
    ],
)
def test_only_generated_names_of_stored_uploads_are_served(client, db, upload_dir, path):
    upload_dir.mkdir()
    (upload_dir / ".incoming-x").write_bytes(b"x")
    assert client.get(path).status_code == 404


def test_a_row_whose_file_is_missing_is_a_404(client, db, instructor, upload_dir):
    post(client, image_bytes("PNG"))
    name = db.scalars(select(Upload.stored_name)).one()
    (upload_dir / name).unlink()
    assert client.get(f"/uploads/{name}").status_code == 404

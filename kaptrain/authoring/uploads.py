"""Images uploaded for module text: the type sniffed from the bytes and opened by Pillow, size and pixels checked,
metadata stripped, stored under a generated name, deduplicated by content.

Nothing the browser says is trusted: neither the file name nor its Content-Type decides the type. Only PNG,
JPEG, GIF and WebP are accepted; SVG is refused (it can carry script), and so is anything Pillow cannot decode
whole. A refused file leaves nothing behind: the checks run on the bytes in memory before anything is written."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, JpegImagePlugin
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaptrain import audit
from kaptrain.accounts.models import User
from kaptrain.authoring.models import Upload
from kaptrain.authoring.services import AuthoringError
from kaptrain.content.render import UPLOAD_NAME_PATTERN

MAX_SIDE = 4000  # pixels, either way
MAX_PIXELS = 16_000_000
STORED_NAME = re.compile(UPLOAD_NAME_PATTERN)


@dataclass(frozen=True)
class ImageType:
    """An accepted image type: the extension its stored name gets and the Content-Type it is served with."""

    extension: str
    content_type: str
    label: str  # as people name it


# Pillow's format name -> how it is stored and served. Nothing else is accepted (SVG least of all).
ACCEPTED = {
    "PNG": ImageType("png", "image/png", "PNG"),
    "JPEG": ImageType("jpg", "image/jpeg", "JPEG"),
    "GIF": ImageType("gif", "image/gif", "GIF"),
    "WEBP": ImageType("webp", "image/webp", "WebP"),
}

NOT_AN_IMAGE = "The file is not a PNG, JPEG, GIF or WebP image. Save or export it as one of those and upload it again."
SVG_REFUSED = "SVG images are not accepted: export it as PNG and upload that."
TOO_MANY_PIXELS = (
    f"The image is {{width}} × {{height}} pixels; images may be at most {MAX_SIDE} pixels wide or high and "
    f"{MAX_PIXELS // 1_000_000} megapixels in all. Scale it down and upload it again."
)
PILLOW_SAYS_BOMB = (
    f"The image declares more pixels than Pillow will decode; images may be at most {MAX_SIDE} × {MAX_SIDE} "
    f"pixels and {MAX_PIXELS // 1_000_000} megapixels. Scale it down and upload it again."
)


class UploadRefused(AuthoringError):
    """The file is not an image the site accepts; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400)


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed every check: its type, its pixel size, and the bytes to store (metadata removed)."""

    format: str
    width: int
    height: int
    data: bytes

    @property
    def type(self) -> ImageType:
        """How it is stored and served."""
        return ACCEPTED[self.format]


def file_size(size: int) -> str:
    """A byte count as people read file sizes ("2 MB", "1.5 MB", "640 kB")."""
    number, unit = (size / 1_000_000, "MB") if size >= 1_000_000 else (size / 1000, "kB")
    return f"{number:.1f}".removesuffix(".0") + " " + unit


def sniff(data: bytes) -> str | None:
    """The accepted image format the bytes begin with (its magic number), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def looks_like_svg(data: bytes) -> bool:
    """Whether the bytes are (probably) an SVG document, to say so rather than "not an image"."""
    return b"<svg" in data[:4096].lower()


def check_image(data: bytes, max_bytes: int) -> CheckedImage:
    """Check uploaded bytes (size, sniffed type, pixel size, Pillow decodes them whole) or raise UploadRefused."""
    if not data:
        raise UploadRefused("The file is empty. Choose a PNG, JPEG, GIF or WebP image.")
    if len(data) > max_bytes:
        raise UploadRefused(
            f"The file is {file_size(len(data))}; images may be at most {file_size(max_bytes)}. "
            "Make it smaller (scale it down, or save a JPEG at a lower quality) and upload it again."
        )
    fmt = sniff(data)
    if fmt is None:
        raise UploadRefused(SVG_REFUSED if looks_like_svg(data) else NOT_AN_IMAGE)
    try:
        return _decode(data, fmt)
    except UploadRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefused(PILLOW_SAYS_BOMB) from None
    except Exception:  # a crafted file can make a decoder raise anything: each means "cannot read it"
        raise UploadRefused(
            f"The file begins like a {ACCEPTED[fmt].label} image but cannot be read as one: it may be damaged or cut "
            "short. Open it in an image editor, save it again and upload that."
        ) from None


def _decode(data: bytes, fmt: str) -> CheckedImage:
    with warnings.catch_warnings():
        # Image.open checks the declared size against Pillow's MAX_IMAGE_PIXELS (left at its default, as the
        # setting is process-wide): past it a warning, past twice it an error. The warning is made an error
        # here so such a file is refused, not logged; the site's own, far lower limits are checked next, still
        # before a single pixel is decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size  # read from the header: nothing is decoded yet
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                raise UploadRefused(TOO_MANY_PIXELS.format(width=width, height=height))
            im.verify()
        # verify() checks the structure only and leaves the image unusable: open again and decode every pixel.
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
            if im.format != fmt and not (fmt == "JPEG" and im.format == "MPO"):  # MPO: a camera's JPEG with extras
                raise UploadRefused(NOT_AN_IMAGE)
            stored = _without_metadata(im, fmt, data)
    if stored is not data:
        with Image.open(io.BytesIO(stored), formats=[fmt]) as out:
            width, height = out.size  # an EXIF rotation may have swapped them
    return CheckedImage(fmt, width, height, stored)


def _has_metadata(im: Image.Image, fmt: str) -> bool:
    if fmt == "PNG":
        return bool(getattr(im, "text", None)) or any(k in im.info for k in ("exif", "xmp", "XML:com.adobe.xmp"))
    if fmt == "JPEG":
        # APP0 is JFIF, APP2 the colour profile, APP14 Adobe's colour transform: anything else is metadata.
        applist = getattr(im, "applist", [])
        return bool(im.info.get("comment")) or any(m not in ("APP0", "APP2", "APP14") for m, _ in applist)
    return False


def _without_metadata(im: Image.Image, fmt: str, data: bytes) -> bytes:
    """The bytes to store: PNG and JPEG that carry metadata (a photo's EXIF location, camera, comments, XMP)
    are saved again without it, upright as the EXIF orientation said, keeping their colour profile; a PNG so
    is lossless, a JPEG reuses its own quantisation tables. Everything else is stored byte for byte: GIF has
    no EXIF, and saving a WebP or an animation again would cost quality or frames."""
    if not _has_metadata(im, fmt) or (fmt == "PNG" and getattr(im, "is_animated", False)):
        return data  # an animated PNG keeps its frames; an MPO is saved as its first picture, a plain JPEG
    upright = ImageOps.exif_transpose(im)
    icc = im.info.get("icc_profile")
    out = io.BytesIO()
    if fmt == "PNG":
        upright.info = {k: v for k, v in im.info.items() if k in ("transparency", "gamma")}
        upright.save(out, "PNG", **({"icc_profile": icc} if icc else {}))
    else:
        upright.info = {}
        options: dict[str, object] = {
            "qtables": getattr(im, "quantization", None),
            "subsampling": JpegImagePlugin.get_sampling(im),
        }
        if icc:
            options["icc_profile"] = icc
        if "progressive" in im.info or "progression" in im.info:
            options["progressive"] = True
        upright.save(out, "JPEG", **options)
    return out.getvalue()


def clean_original_name(name: str | None) -> str:
    """The name the file had on the uploader's computer, only for display: its last part, printable, cut to fit."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    return (base or "image")[:255]


def generated_name(image_type: ImageType) -> str:
    """A new stored name: 128 random bits in hex and the sniffed type's extension (never the uploader's name)."""
    name = f"{secrets.token_hex(16)}.{image_type.extension}"
    assert STORED_NAME.fullmatch(name)
    return name


def find_upload(session: Session, name: str) -> Upload | None:
    """The upload stored under this name; None for anything that is not a generated name."""
    if not STORED_NAME.fullmatch(name):
        return None
    return session.scalar(select(Upload).where(Upload.stored_name == name))


def list_uploads(session: Session) -> list[tuple[Upload, str | None]]:
    """Every upload with the name of who uploaded it (None once that account is gone), newest first."""
    query = (
        select(Upload, User.full_name)
        .outerjoin(User, User.id == Upload.uploaded_by_id)
        .order_by(Upload.uploaded_at.desc(), Upload.id.desc())
    )
    return [(upload, name) for upload, name in session.execute(query)]


def markdown_snippet(upload: Upload) -> str:
    """What to paste into a module's Markdown to show the image (the author replaces the alt text)."""
    return f"![alt text](/uploads/{upload.stored_name})"


@dataclass(frozen=True)
class Stored:
    """The result of an upload: its row, and whether the same image was already there (nothing new stored)."""

    upload: Upload
    existing: bool

    @property
    def message(self) -> str:
        """What the uploads page says next."""
        name = self.upload.original_name
        if self.existing:
            return f"This image was uploaded before (as “{name}”): use its Markdown below."
        return f"Uploaded “{name}”. Copy its Markdown line from the highlighted row below into a module's text."


def store_upload(
    session: Session, data: bytes, original_name: str | None, user: User, upload_dir: Path, max_bytes: int
) -> Stored:
    """Check an uploaded image and keep it: a new row and file, or the row of the same bytes uploaded before.

    The row is flushed before the file is written, so a refused flush leaves no file; a refused image
    (UploadRefused) leaves neither."""
    checked = check_image(data, max_bytes)
    digest = hashlib.sha256(data).hexdigest()  # of the bytes as uploaded: the same file again finds its row
    existing = session.scalar(select(Upload).where(Upload.sha256 == digest).order_by(Upload.id).limit(1))
    if existing is not None:
        if not (upload_dir / existing.stored_name).is_file():  # lost from disk (e.g. a partial restore): put it back
            _write(upload_dir, existing.stored_name, checked.data)
        return Stored(existing, True)
    upload = Upload(
        stored_name=generated_name(checked.type),
        original_name=clean_original_name(original_name),
        content_type=checked.type.content_type,
        size_bytes=len(checked.data),
        width=checked.width,
        height=checked.height,
        sha256=digest,
        uploaded_by_id=user.id,
    )
    session.add(upload)
    session.flush()
    _write(upload_dir, upload.stored_name, checked.data)
    audit.record(
        session,
        "upload.add",
        "upload",
        upload.id,
        actor_id=user.id,
        name=upload.stored_name,
        original_name=upload.original_name,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
    )
    return Stored(upload, False)


def _write(upload_dir: Path, name: str, data: bytes) -> None:
    """Write the file whole or not at all: a temporary file in the same folder, renamed into place."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=upload_dir, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; it is public, like the static files
        os.replace(tmp, upload_dir / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Image uploads for module text: checked, stored under a generated name, served from the site."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SubmitField

from kaptrain.accounts.models import Role
from kaptrain.auth import role_required, user
from kaptrain.authoring import uploads
from kaptrain.authoring.blueprint import bp
from kaptrain.db import finish_request, get_session
from kaptrain.errors import fail
from kaptrain.forms import BaseForm
from kaptrain.web import error_page

# Learners' browsers fetch the images at /uploads/<name>, outside the authoring blueprint's /author prefix.
public_bp = Blueprint("uploads", __name__)

A_YEAR = 365 * 24 * 3600  # a stored name never changes its bytes, so browsers and proxies may keep it


class UploadForm(BaseForm):
    """One image file; its type is decided by its bytes, so the form checks only that a file was chosen."""

    file = FileField("Image file", validators=[FileRequired(message="Choose an image file to upload.")])
    submit = SubmitField("Upload the image")


def _upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def _max_bytes() -> int:
    return int(current_app.config["UPLOAD_MAX_BYTES"])


def _page(form: UploadForm, status: int) -> ResponseReturnValue:
    rows = uploads.list_uploads(get_session())
    limits = {"size": uploads.file_size(_max_bytes()), "side": uploads.MAX_SIDE, "mp": uploads.MAX_PIXELS // 10**6}
    page = render_template(
        "authoring/uploads.html",
        form=form,
        rows=rows,
        limits=limits,
        snippet=uploads.markdown_snippet,
        has_errors=bool(form.errors),
    )
    return page, status


@bp.route("/uploads", methods=["GET", "POST"])
@role_required(Role.INSTRUCTOR)
def uploads_page() -> ResponseReturnValue:
    """Upload an image for module text; list every upload with the Markdown that shows it."""
    form = UploadForm()
    if form.validate_on_submit():
        file = form.file.data
        try:
            stored = uploads.store_upload(
                get_session(), file.read(), file.filename, user(), _upload_dir(), _max_bytes()
            )
        except uploads.UploadRefused as exc:
            form.file.errors = [str(exc)]
        else:
            flash(stored.message, "info" if stored.existing else "success")
            return redirect(url_for("authoring.uploads_page", _anchor=f"upload-{stored.upload.id}"))
    return _page(form, 400 if form.errors else 200)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """A request over the site's size limit: on the uploads page, say what the image limit is."""
    finish_request(commit=False)
    if request.endpoint != "authoring.uploads_page":  # another authoring page: what the site-wide handler does
        return error_page(413, exc.description if getattr(exc, "kaptrain_detail", False) else None)
    limit = uploads.file_size(_max_bytes())
    return error_page(413, f"Images may be at most {limit}. Make the file smaller and upload it again.")


@public_bp.route("/uploads/<name>")
def serve(name: str) -> Response:
    """An uploaded image, as module pages show it (public: it is part of the course text)."""
    upload = uploads.find_upload(get_session(), name)
    if upload is None:
        fail(404, "There is no uploaded image with that name.")
    response = send_from_directory(_upload_dir(), upload.stored_name, mimetype=upload.content_type, max_age=A_YEAR)
    response.headers["Content-Disposition"] = "inline"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = f"public, max-age={A_YEAR}, immutable"
    # Opened on its own, the image gets no scripts, styles or forms, whatever its bytes might be taken for.
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response

"""The settings console: provider, accreditation statement, signatory, paper size and approval per course."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from kaptrain.accounts.models import Role
from kaptrain.admin import settings
from kaptrain.admin.forms import approval_field, settings_form
from kaptrain.admin.views import bp
from kaptrain.auth import role_required, user
from kaptrain.content.models import Course
from kaptrain.db import get_session


@bp.route("/settings", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def site_settings() -> ResponseReturnValue:
    """Edit the settings certificates use; an empty field falls back to the default shown beside it."""
    session = get_session()
    courses = list(session.scalars(select(Course).order_by(Course.title)))
    stored = settings.all_settings(session)
    current: dict[str, Any] = {key: stored.get(key) or "" for key in settings.SITE_KEYS}
    current |= {approval_field(c.slug): stored.get(settings.approval_key(c.slug)) or "" for c in courses}
    form = settings_form([(c.slug, c.title) for c in courses], data=current)
    if form.validate_on_submit():
        values = {key: (form[key].data or "").strip() or None for key in settings.SITE_KEYS}
        values |= {settings.approval_key(c.slug): form[approval_field(c.slug)].data or None for c in courses}
        try:
            changed = settings.set_settings(session, values, user())
        except settings.SettingsError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"Settings saved ({len(changed)} changed)." if changed else "Nothing was changed.", "success")
            return redirect(url_for("admin.site_settings"))
    defaults = {key: settings.environment_default(key) for key in settings.SITE_KEYS}
    return render_template(
        "admin/settings.html", form=form, courses=courses, defaults=defaults, approval_field=approval_field,
        env_page_size=current_app.config["CERTIFICATE_PAGE_SIZE"],
    ), 422 if form.errors or form.form_errors else 200  # fmt: skip

"""Administrator pages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from wtforms import SelectChoice

from kaptrain.accounts.models import Role, User
from kaptrain.accounts.services import find_user_by_email
from kaptrain.admin.forms import AccommodationForm
from kaptrain.auth import role_required, user
from kaptrain.db import get_session
from kaptrain.quizzes import services as quizzes
from kaptrain.quizzes.models import Accommodation, Quiz

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/accommodations", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def accommodations() -> ResponseReturnValue:
    """Grant and list per-learner quiz accommodations."""
    session = get_session()
    form = AccommodationForm()
    form.quiz.choices = [SelectChoice(0, "Choose a quiz")] + [
        SelectChoice(q.id, q.title) for q in quizzes.all_quizzes(session)
    ]
    if form.validate_on_submit():
        learner = find_user_by_email(session, form.email.data or "")
        quiz = session.get(Quiz, form.quiz.data)
        if learner is None:
            form.email.errors = ["No account has this email."]
        elif quiz is None:
            form.quiz.errors = ["Choose a quiz."]
        else:
            quizzes.grant_accommodation(
                session,
                learner.id,
                quiz,
                form.extra_minutes.data or 0,
                form.extra_attempts.data or 0,
                form.note.data or "",
                user().id,
            )
            flash(f"Accommodation saved for {learner.full_name} on “{quiz.title}”.", "success")
            return redirect(url_for("admin.accommodations"))
    rows = session.execute(
        select(Accommodation, User, Quiz)
        .join(User, User.id == Accommodation.user_id)
        .join(Quiz, Quiz.id == Accommodation.quiz_id)
        .order_by(Accommodation.granted_at.desc())
    ).all()
    return render_template("admin/accommodations.html", form=form, rows=rows), 422 if form.errors else 200

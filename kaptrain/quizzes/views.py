"""Quiz pages: start, answer, submit, review; item analysis for instructors."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("quizzes", __name__)

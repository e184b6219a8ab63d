"""The certificates blueprint, shared by the learner pages (views.py) and the public verification (public.py)."""

from flask import Blueprint

bp = Blueprint("certificates", __name__)

"""The authoring blueprint (instructors and admins), shared by the module editor (views.py), the question-bank
editor (bank_views.py) and image uploads (upload_views.py)."""

from flask import Blueprint

bp = Blueprint("authoring", __name__, url_prefix="/author")

"""WSGI entry point: `gunicorn run:app` or `flask --app run run`."""

from kaptrain import create_app

app = create_app()

"""kaptrain: continuing-education courses in Ketamine-Assisted Psychotherapy for clinicians."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from kaptrain.config import PROJECT_ROOT, load_config


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config, database, extensions, blueprints, CLI, errors, security headers."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    app.config.update(load_config(config))
    _check_signing_keys(app)
    _warn_about_mail_in_requests(app)
    _warn_about_no_support_address(app)
    _register_database(app)
    _register_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    _register_web(app)
    _register_page_cache(app)  # its page is stored before compression, and served before anything else runs
    _wrap_wsgi(app)  # last: the fast lane needs the page cache's setting
    return app


def _check_signing_keys(app: Flask) -> None:
    # A key directory others can read would fail every certificate at the learner's last step: say so now.
    from kaptrain.config import ConfigError
    from kaptrain.credentials.keys import Keyring, KeyStoreError

    try:
        Keyring(app.config["CREDENTIAL_KEY_DIR"]).check()
    except (KeyStoreError, OSError) as exc:  # OSError: a directory this process may not even read
        message = f"KAPTRAIN_CREDENTIAL_KEY_DIR: {exc}; certificates cannot be signed until it is fixed"
        raise ConfigError(message) from None


def _warn_about_mail_in_requests(app: Flask) -> None:
    # Without a queue each email is sent inside the request that caused it: the answer waits for the mail server,
    # and a password reset's answer time then tells whether the address has an account.
    if app.config["ENV"] == "production" and app.config["SMTP_HOST"] and not app.config["REDIS_URL"]:
        app.logger.warning(
            "KAPTRAIN_SMTP_HOST is set without KAPTRAIN_REDIS_URL: each email is sent within the request that "
            "causes it, which slows those answers and lets a password reset's answer time tell whether the "
            "address has an account. Set KAPTRAIN_REDIS_URL and run `flask --app kaptrain worker`."
        )


def _warn_about_no_support_address(app: Flask) -> None:
    # The pages that send people to the provider (a deactivated account, a revoked certificate, a closed account's
    # questions) can then only say "the site's team", with no way to reach it.
    if app.config["ENV"] == "production" and not app.config["SUPPORT_EMAIL"]:
        app.logger.warning(
            "KAPTRAIN_SUPPORT_EMAIL is not set: learners told to contact the provider (a deactivated account, a "
            "revoked certificate) are given no address, and the page footer shows none. Set it to an inbox your "
            "team reads."
        )


def _register_database(app: Flask) -> None:
    from kaptrain.cache import init_cache
    from kaptrain.content import catalogue  # noqa: F401 - its flush listeners give changed content a new version
    from kaptrain.db import init_db

    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        PROJECT_ROOT.joinpath("instance").mkdir(exist_ok=True)
    init_db(app)
    init_cache(app)


def _register_extensions(app: Flask) -> None:
    from kaptrain.auth import init_auth
    from kaptrain.extensions import csrf, limiter

    csrf.init_app(app)
    limiter.init_app(app)
    init_auth(app)


def _register_page_cache(app: Flask) -> None:
    from kaptrain.pagecache import init_page_cache

    init_page_cache(app)


def _wrap_wsgi(app: Flask) -> None:
    from kaptrain.web import wrap_wsgi

    wrap_wsgi(app)


def _register_blueprints(app: Flask) -> None:
    from kaptrain.accounts import link_views, twofactor_views  # noqa: F401 - they register their routes on the blueprint
    from kaptrain.accounts.views import bp as accounts_bp
    from kaptrain.admin.views import bp as admin_bp
    from kaptrain.authoring import bank_views, upload_views  # noqa: F401 - they register their routes on the blueprint
    from kaptrain.authoring.upload_views import public_bp as uploads_bp
    from kaptrain.authoring.views import bp as authoring_bp
    from kaptrain.certificates import issuer, public  # noqa: F401 - they register their routes on the blueprint
    from kaptrain.certificates.views import bp as certificates_bp
    from kaptrain.courses.views import bp as courses_bp
    from kaptrain.instructor.views import bp as instructor_bp
    from kaptrain.quizzes.views import bp as quizzes_bp
    from kaptrain.web import URL_CONVERTERS

    app.url_map.converters.update(URL_CONVERTERS)  # before any rule is added, so that every rule uses them

    app.register_blueprint(accounts_bp)
    app.register_blueprint(courses_bp)
    app.register_blueprint(quizzes_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(certificates_bp)
    app.register_blueprint(instructor_bp)
    app.register_blueprint(authoring_bp)
    app.register_blueprint(uploads_bp)


def _register_cli(app: Flask) -> None:
    from kaptrain.cli import register_cli

    register_cli(app)


def _register_web(app: Flask) -> None:
    from kaptrain.static_assets import init_static_assets
    from kaptrain.web import init_web

    init_web(app)
    init_static_assets(app)

"""Configuration: safe defaults, overridden by KAPTRAIN_* environment variables or a test mapping."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "SECRET_KEY": None,
    # Earlier secret keys, still accepted after a rotation: comma-separated in KAPTRAIN_SECRET_KEY_FALLBACKS. They
    # open sessions signed and two-factor secrets sealed before it (kaptrain.accounts.sealing).
    "SECRET_KEY_FALLBACKS": [],
    # Outside production, with no SECRET_KEY: this installation's own key, made at random on first start and kept
    # here (owner-only). Never a constant: a key anyone can read would let anyone sign a session as anyone.
    "SECRET_KEY_FILE": str(PROJECT_ROOT / "instance" / "secret_key"),
    "DATABASE_URL": f"sqlite:///{PROJECT_ROOT / 'instance' / 'kaptrain.sqlite3'}",
    "MODULES_DIR": str(PROJECT_ROOT / "modules"),
    "QUIZZES_DIR": str(PROJECT_ROOT / "quizzes"),
    # Where rate-limit counts are kept. Unset: KAPTRAIN_REDIS_URL when that is set (every server and worker then
    # counts together), else memory:// (one count per process: right for one process only).
    "RATELIMIT_STORAGE_URI": None,
    "RATELIMIT_ENABLED": True,
    "LOGIN_RATE_LIMIT": "10 per minute",
    # Account emails asked for from a form (password reset, registration, confirmation and email-change links),
    # per client address and again per email address or account: nobody can flood an inbox.
    "ACCOUNT_MAIL_RATE_LIMIT": "5 per hour",
    # Second-factor codes tried at login, per client address and again per account.
    "TWO_FACTOR_RATE_LIMIT": "5 per minute; 20 per hour",
    "PASSWORD_CHECK_RATE_LIMIT": "10 per hour",
    "TRANSCRIPT_PDF_RATE_LIMIT": "10 per minute; 60 per hour",
    # How long emailed links work: a password reset, and a confirmation of an address (new or changed).
    "RESET_TOKEN_MINUTES": 60,
    "CONFIRM_TOKEN_HOURS": 72,
    # Certificate verification (page and API together) per client address: codes cannot be guessed, nor tried.
    "VERIFY_RATE_LIMIT": "60 per minute",
    # The wording an accrediting body approved; empty means certificates claim no accreditation.
    "ACCREDITATION_STATEMENT": "",
    # The site's public address, used in certificate verification links and QR codes, and in emails.
    "BASE_URL": "http://127.0.0.1:5000",
    # Addresses the site had before (comma-separated in KAPTRAIN_PREVIOUS_BASE_URLS): certificates issued under one
    # name it in their credential's id and status list, and the verify page still finds their record and status.
    "PREVIOUS_BASE_URLS": [],
    "CERTIFICATE_PAGE_SIZE": "A4",  # one of PAGE_SIZES
    "CERTIFICATE_NUMBER_PREFIX": "KAP",
    # Override the signatory named in course.yaml (e.g. per deployment).
    "CERTIFICATE_SIGNATORY_NAME": "",
    "CERTIFICATE_SIGNATORY_TITLE": "",
    # Ed25519 keys that sign certificate credentials (kaptrain/credentials/keys.py): outside the database,
    # made on first use with owner-only permissions. Back this directory up (see kaptrain/credentials/README.md).
    "CREDENTIAL_KEY_DIR": str(PROJECT_ROOT / "instance" / "keys"),
    "SITE_NAME": "kaptrain",
    # Where learners write with questions (a deactivated account, a certificate): shown in every page's footer and
    # in the messages that send people to the site's team. Empty: those messages say "the site's team".
    "SUPPORT_EMAIL": "",
    "TRUSTED_PROXIES": 0,
    "SESSION_HOURS": 12,
    # Course evaluations are shown to instructors (page and CSV) once this many learners have evaluated the course,
    # so that no one learner's answers and comments can be picked out.
    "EVALUATION_MIN_GROUP": 3,
    # Item-analysis quality flags need this many answers to a question before they appear.
    "ITEM_ANALYSIS_MIN_ATTEMPTS": 20,
    # Mail (kaptrain/mail.py): without SMTP_HOST messages are written to the log instead of sent.
    "SMTP_HOST": None,
    "SMTP_PORT": 587,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_SECURITY": "starttls",  # one of SECURITY_MODES
    "SMTP_TIMEOUT": 10,
    "MAIL_FROM": "kaptrain <no-reply@localhost>",
    # Jobs (kaptrain/jobs.py): without REDIS_URL jobs run inline in the caller.
    "REDIS_URL": None,
    # Images instructors upload for module text (kaptrain/authoring/uploads.py): where they are kept (back it up
    # with the database) and the largest file accepted, in bytes.
    "UPLOAD_DIR": str(PROJECT_ROOT / "instance" / "uploads"),
    "UPLOAD_MAX_BYTES": 2_000_000,
    # A learner's claim of more than this many times the active time the site measured waits for an administrator's
    # approval, even where certificates are issued automatically (kaptrain.certificates.services); 0: never.
    "CLAIM_REVIEW_FACTOR": 2,
    # Rendered learner pages kept per process (kaptrain/pagecache.py), in MiB; 0 turns the cache off.
    "PAGE_CACHE_MB": 64,
}

# Values read from the environment are strings; these keys are converted.
_INT_KEYS = {
    "TRUSTED_PROXIES",
    "SESSION_HOURS",
    "RESET_TOKEN_MINUTES",
    "CONFIRM_TOKEN_HOURS",
    "ITEM_ANALYSIS_MIN_ATTEMPTS",
    "SMTP_PORT",
    "SMTP_TIMEOUT",
    "UPLOAD_MAX_BYTES",
    "PAGE_CACHE_MB",
    "CLAIM_REVIEW_FACTOR",
    "EVALUATION_MIN_GROUP",
}
_BOOL_KEYS = {"RATELIMIT_ENABLED"}
_LIST_KEYS = {"SECRET_KEY_FALLBACKS", "PREVIOUS_BASE_URLS"}
# Only these spellings: a typo such as "flase" must stop the start, not quietly turn rate limiting off.
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# The values these settings may take, here so that a wrong one is refused at start and not at a learner's
# certificate (kaptrain.certificates.pdf) or in every mail job (kaptrain.mail).
PAGE_SIZES = ("A4", "Letter")
SECURITY_MODES = ("starttls", "ssl", "none")

# The constant development key of earlier versions. It signs nothing now; it only still opens two-factor secrets
# sealed under it on an existing development database, which are sealed again under the new key at their next code.
LEGACY_DEV_SECRET = "dev-only-not-secret"  # noqa: S105 - opens old development data only, see load_config


class ConfigError(RuntimeError):
    """The configuration cannot run the app (e.g. production without a secret key)."""


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in DEFAULTS:
        raw = environ.get(f"KAPTRAIN_{key}")
        if raw is None:
            continue
        if key in _INT_KEYS:
            out[key] = _int(key, raw)
        elif key in _BOOL_KEYS:
            out[key] = _bool(key, raw)
        elif key in _LIST_KEYS:
            out[key] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            out[key] = raw
    return out


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"KAPTRAIN_{key} must be a whole number, not {raw!r}") from None


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"KAPTRAIN_{key} must be true or false (or 1/0, yes/no, on/off), not {raw!r}")


def _check_choices(cfg: Mapping[str, Any]) -> None:
    for key, choices in (("CERTIFICATE_PAGE_SIZE", PAGE_SIZES), ("SMTP_SECURITY", SECURITY_MODES)):
        if cfg[key] not in choices:
            raise ConfigError(f"KAPTRAIN_{key} must be one of {', '.join(choices)}, not {cfg[key]!r}")


def installation_secret(path: Path) -> str:
    """This installation's development key: read from `path`, or made at random and written there (mode 0600).

    Written to a temporary file first and linked into place, so two processes starting together agree on one key
    and neither reads a half-written file."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mkstemp makes it owner-only
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    # As ssh treats its keys: a key file someone else owns or may write could be theirs, and sign sessions for them.
    found = path.lstat()
    if path.is_symlink() or found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise ConfigError(
            f"{path}: the secret key file must be a plain file owned by this user and writable by no one else; "
            "delete it to make a new one"
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise ConfigError(
            f"{path}: the secret key in this file is empty or too short; delete the file to make a new one"
        )
    return key


def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, KAPTRAIN_* environment variables and explicit overrides, then check them."""
    cfg = dict(DEFAULTS)
    cfg.update(_from_env(os.environ if environ is None else environ))
    cfg.update(overrides or {})
    _check_choices(cfg)
    production = cfg["ENV"] == "production"
    if not cfg["SECRET_KEY"]:
        if production:
            raise ConfigError(
                "KAPTRAIN_SECRET_KEY is not set. In production the secret key signs sessions and CSRF "
                "tokens and must be a long random value shared by every server, e.g. "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        cfg["SECRET_KEY"] = installation_secret(Path(cfg["SECRET_KEY_FILE"]))
        cfg["SEALING_LEGACY_KEYS"] = [LEGACY_DEV_SECRET]
    cfg.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=production,
        # Any request body; an image upload may be as large as UPLOAD_MAX_BYTES, plus the form around it.
        MAX_CONTENT_LENGTH=max(2 * 1024 * 1024, int(cfg["UPLOAD_MAX_BYTES"]) + 64 * 1024),
        # A login ends SESSION_HOURS after it began (kaptrain.auth checks the login time kept in the
        # session); a cookie signed longer ago than that is refused outright.
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=cfg["SESSION_HOURS"]),
        # A form's token lives as long as the login can (Flask-WTF's default is an hour): an untimed quiz or a
        # module left open over lunch still saves and submits. The token is tied to the session, whose secret a
        # new login replaces, so it never outlives the login it was made for.
        WTF_CSRF_TIME_LIMIT=int(cfg["SESSION_HOURS"]) * 3600,
        REMEMBER_COOKIE_DURATION=dt.timedelta(hours=cfg["SESSION_HOURS"]),
        RATELIMIT_STORAGE_URI=cfg["RATELIMIT_STORAGE_URI"] or cfg["REDIS_URL"] or "memory://",
    )
    return cfg

"""Public verification: the page a certificate's QR code opens, the same record as JSON, the certificate's signed
credential, and a page that checks an uploaded certificate file. No login.

Codes carry 128 random bits, so they cannot be guessed; a rate limit per address (VERIFY_RATE_LIMIT, shared
by the page and the API) keeps anyone from trying. An unknown code and a malformed one get the same answer,
after the same work."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from flask import Response, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from kaptrain.certificates import checking, services
from kaptrain.certificates.blueprint import bp
from kaptrain.certificates.forms import CheckFileForm, FindCodeForm, upload_limit
from kaptrain.certificates.models import Certificate, CertificateStatus
from kaptrain.certificates.pdf import format_date, format_hours
from kaptrain.db import finish_request, get_session, utcnow
from kaptrain.extensions import limiter
from kaptrain.web import error_page, wait_words

API_ENDPOINT = "certificates.api_certificate"
CREDENTIAL_ENDPOINT = "certificates.verify_credential"
PUBLIC_ENDPOINTS = frozenset(
    {"certificates.verify", API_ENDPOINT, CREDENTIAL_ENDPOINT, "certificates.check", "certificates.find"}
)
CREDENTIAL_FILE = "credential.json"
# Well-formed but shorter than every issued code (32 characters), so it never matches anything.
_NEVER_ISSUED = "0" * 20


def _verify_limit() -> str:
    return str(current_app.config["VERIFY_RATE_LIMIT"])


def _lookup(code: str) -> Certificate | None:
    """The certificate with this code; a malformed code costs the same query as an unknown one."""
    well_formed = services.CODE_PATTERN.fullmatch(code) is not None
    # As accounts.services.authenticate hashes a dummy password for an unknown email: equal work, equal time.
    found = services.find_by_code(get_session(), code if well_formed else _NEVER_ISSUED)
    return found if well_formed else None


def _day(certificate: Certificate, moment: dt.datetime | None) -> str:
    """A certificate's date as its PDF prints it (the day in the holder's zone, "March 5, 2026"), or "" for none."""
    return format_date(certificate.local_day(moment)) if moment is not None else ""


def _facts(status: services.PublicStatus) -> list[tuple[str, str]]:
    """What the page lists about the certificate, as its PDF shows it (never the email or licence number)."""
    c = status.certificate
    expiry_label = {"valid": "Valid until", "expired": "Expired on"}.get(status.verdict, "Expiry date")
    rows = [
        ("Holder", c.holder_name),
        ("Credential", c.holder_credential),
        ("Course", c.course_title),
        ("Completed on", _day(c, c.completed_at)),
        ("Hours", f"{format_hours(c.hours)} {'hour' if c.hours == 1 else 'hours'}"),
        ("Format", c.delivery_format),
        ("Certificate number", c.number or "Not yet assigned"),
        ("Issued by", c.provider),
        ("Issued on", _day(c, c.issued_at)),
        (expiry_label, _day(c, c.expires_at)),
    ]
    if c.accreditation_statement:  # designations are printed, and so shown, only with an accreditation
        credits = "; ".join(f"{d['credit_type']} {format_hours(Decimal(str(d['hours'])))}" for d in c.designations)
        rows.append(("Credit", credits))
    else:
        rows.append(("Continuing-education credit", "None: a certificate of completion, not approved for CE credit"))
    return [(label, value) for label, value in rows if value]


@bp.route("/verify/<path:code>")
@limiter.shared_limit(_verify_limit, scope="certificate-verification")
def verify(code: str) -> ResponseReturnValue:
    """Show whether a certificate is valid, revoked, superseded, expired or pending (anyone, no login)."""
    certificate = _lookup(code)
    if certificate is None:
        return render_template("certificates/verify_not_found.html"), 404
    status = services.public_status(certificate)
    revoked_on = _day(certificate, certificate.revoked_at)
    latest = services.latest_version(get_session(), certificate)
    replacement_revoked = latest if latest.status == CertificateStatus.REVOKED and latest is not certificate else None
    replacement = services.replacement_of(get_session(), certificate) if status.verdict == "revoked" else None
    return render_template(
        "certificates/verify.html",
        status=status,
        facts=_facts(status),
        revoked_on=revoked_on,
        replacement_revoked=replacement_revoked,
        replacement_revoked_on=_day(latest, latest.revoked_at),
        replaced_on=_day(replacement, replacement.issued_at) if replacement else None,
        checked_at=utcnow(),
    )


@bp.route("/api/v1/certificates/<path:code>")
@limiter.shared_limit(_verify_limit, scope="certificate-verification")
def api_certificate(code: str) -> ResponseReturnValue:
    """The certificate's public record as JSON, linking its signed credential; {"status": "unknown"} with 404."""
    certificate = _lookup(code)
    if certificate is None:
        return jsonify(status="unknown"), 404
    record = services.public_status(certificate).as_json()
    latest = services.latest_version(get_session(), certificate)
    if latest is not certificate and latest.status == CertificateStatus.REVOKED and latest.revoked_at:
        # As the page says: the version that replaced this one was revoked, so neither is valid.
        record["replacement_revoked_on"] = latest.local_day(latest.revoked_at).isoformat()
    replacement = services.replacement_of(get_session(), certificate) if record["status"] == "revoked" else None
    if replacement is not None and replacement.issued_at:
        record["replaced_on"] = replacement.local_day(replacement.issued_at).isoformat()
    return jsonify({**record, "credential": _credential_url(certificate)})


def _credential_url(certificate: Certificate) -> str | None:
    """The absolute address of the certificate's signed credential, once it has one."""
    if certificate.status == CertificateStatus.PENDING:
        return None
    return f"{services.verification_url(certificate.code)}/{CREDENTIAL_FILE}"


@bp.route(f"/verify/<path:code>/{CREDENTIAL_FILE}")
@limiter.shared_limit(_verify_limit, scope="certificate-verification")
def verify_credential(code: str) -> ResponseReturnValue:
    """The certificate's signed Open Badges 3.0 credential as a JSON download (anyone, no login)."""
    certificate = _lookup(code)
    if certificate is None:
        return render_template("certificates/verify_not_found.html"), 404
    if certificate.status == CertificateStatus.PENDING:
        return error_page(404, "This certificate has not been issued yet, so it has no signed credential.")
    if certificate.credential is None:
        return error_page(404, "This certificate's signed credential is being prepared. Try again in a few minutes.")
    body = json.dumps(certificate.credential, indent=2, ensure_ascii=False)
    response = Response(body, mimetype="application/json")
    response.headers.set("Content-Disposition", "attachment", filename=f"{certificate.number}-{CREDENTIAL_FILE}")
    return response


def _showing_the_form() -> bool:
    return request.method != "POST"  # exempt: only each check counts, like a verification


# A certificate number as people copy it: KAP-2026-000123, kap 2026 123, KAP2026000123 (the year is four digits).
NUMBER_PATTERN = re.compile(
    r"([A-Z]{1,20})[\s\-\u2010-\u2015_./]*([0-9]{4})[\s\-\u2010-\u2015_./]*([0-9]{1,12})", re.IGNORECASE
)


def number_in(typed: str) -> str | None:
    """The certificate number in what someone typed, written as certificates print it (PREFIX-YEAR-000123)."""
    found = NUMBER_PATTERN.fullmatch(typed.strip())
    if found is None:
        return None
    prefix, year, serial = found.groups()
    return f"{prefix.upper()}-{year}-{int(serial):06d}"


def code_in(typed: str) -> str | None:
    """The verification code in what someone typed: the whole address from the certificate, or its code."""
    tail = typed.strip().split("#")[0].split("?")[0].rstrip("/").rsplit("/verify/", 1)[-1]
    return tail if services.CODE_PATTERN.fullmatch(tail) else None


def _number_key() -> str:
    """Lookups of one certificate number count together, from whichever address they come and however the number
    is written."""
    typed = request.args.get("code") or ""
    return "verify-number:" + (number_in(typed) or typed.strip().upper())


def _number_and_address_key() -> str:
    """Lookups of one certificate number from one client address."""
    return f"{_number_key()}:{get_remote_address()}"


def _surname_given() -> bool:
    return bool((request.args.get("surname") or "").strip())


@bp.route("/verify/find")
@limiter.shared_limit(_verify_limit, scope="certificate-verification", exempt_when=lambda: not request.args)
# A number with surnames, tried again and again (common surnames): after five tries a day from one address, that
# address looks the number up no more; after twenty from any addresses, no one does (the verification address on
# the certificate is still the way in). Numbers run in sequence, so one address alone cannot shut the lookup of
# every certificate for everyone, as a single limit per number let it. Every try counts, found or not, and is
# counted before the lookup: counting misses after the answer let a burst of requests sent at once past both.
@limiter.limit("5 per day", key_func=_number_and_address_key, exempt_when=lambda: not _surname_given())
@limiter.limit("20 per day", key_func=_number_key, exempt_when=lambda: not _surname_given())
def find() -> ResponseReturnValue:
    """The verification page for an address or code typed into the check page, or for a certificate number with
    its holder's surname (what a board's CE form often records)."""
    form = FindCodeForm(request.args)
    if form.validate():
        typed = (form.code.data or "").strip()
        code = code_in(typed)
        if code is not None:
            return redirect(url_for("certificates.verify", code=code))
        number = number_in(typed)
        prefix = current_app.config["CERTIFICATE_NUMBER_PREFIX"]
        if number is None and number_in(f"{prefix}-{typed}") is not None:  # "2026-000042": the letters left out
            form.code.errors = [
                f"Certificate numbers start with their letters: write it as on the certificate, for example "
                f"{number_in(f'{prefix}-{typed}')}."
            ]
        elif number is None:
            form.code.errors = ["That is not a verification address or code from one of this site's certificates."]
        elif not (form.surname.data or "").strip():
            form.surname.errors = [
                "With a certificate number, enter the holder's surname as well: numbers alone are not looked up, "
                "since they run in sequence and would let anyone list the certificates."
            ]
        else:
            found = services.find_by_number_and_surname(get_session(), number, form.surname.data or "")
            if found is not None:
                return redirect(url_for("certificates.verify", code=found.code))
            # Not a mistake in the form but the answer a verifier came for: a verdict, as for a wrong address.
            return _found_nothing(form, not_found=(number, (form.surname.data or "").strip())), 422
    return _found_nothing(form), 422


def _found_nothing(find_form: FindCodeForm, not_found: tuple[str, str] | None = None) -> str:
    """The check page again with the lookup form and its errors, or the verdict that no certificate has the number
    and surname looked up (the file upload empty)."""
    limit_mb = upload_limit() // (1024 * 1024)
    upload = CheckFileForm(formdata=None)
    return render_template(
        "certificates/check.html",
        form=upload,
        find_form=find_form,
        result=None,
        limit_mb=limit_mb,
        not_found=not_found,
    )


@bp.route("/verify", methods=["GET", "POST"])
@limiter.shared_limit(_verify_limit, scope="certificate-verification", exempt_when=_showing_the_form)
def check() -> ResponseReturnValue:
    """Check an uploaded certificate PDF or credential JSON offline, and say whether it is valid or why not."""
    form = CheckFileForm()
    result = None
    if form.validate_on_submit():
        result = checking.check_file(get_session(), form.file.data.read())
    status = 422 if form.errors or (result is not None and not result.verdict.ok) else 200
    limit_mb = upload_limit() // (1024 * 1024)
    page = render_template(
        "certificates/check.html", form=form, find_form=FindCodeForm(formdata=None), result=result, limit_mb=limit_mb
    )
    return page, status


@bp.errorhandler(RateLimitExceeded)
def rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
    """Over the limit: the API says so in JSON; pages get the site's error page, as before."""
    finish_request(commit=False)
    if request.endpoint == API_ENDPOINT:
        return jsonify(status="rate_limited", message="Too many requests: wait a minute and try again."), 429
    if request.endpoint == "certificates.find" and exc.limit.limit.get_expiry() >= 86400:
        # A number looked up as often as a day allows: the page again, with the ways that still work today.
        form = FindCodeForm(request.args)
        form.code.errors = [
            "This certificate number has been looked up as often as a day allows. The verification address printed "
            "under the certificate's QR code checks it at once, or upload the certificate's PDF below; a lookup by "
            "number works again tomorrow."
        ]
        return _found_nothing(form), 429
    return error_page(429, f"Please wait {wait_words(exc)} before trying again.")


@bp.after_request
def _public_headers(response: Response) -> Response:
    if request.endpoint in PUBLIC_ENDPOINTS:
        # A holder's name is on the page: shared links should not end up in search results.
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    if request.endpoint in (API_ENDPOINT, CREDENTIAL_ENDPOINT):
        response.headers["Access-Control-Allow-Origin"] = "*"  # verifiers call it from their own sites
    return response

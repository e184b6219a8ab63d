"""HTTP errors that carry a message written for the person who hit them."""

from __future__ import annotations

from typing import NoReturn

from werkzeug.exceptions import HTTPException, default_exceptions


def fail(code: int, message: str) -> NoReturn:
    """Abort with an HTTP error whose page shows this message."""
    exc: HTTPException = default_exceptions[code](description=message)
    exc.kaptrain_detail = True  # type: ignore[attr-defined]
    raise exc

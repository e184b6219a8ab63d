"""Multibase encodings: base58-btc ('z', for keys and proof values) and base64url ('u', for status lists)."""

from __future__ import annotations

import base64
import binascii

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: value for value, char in enumerate(BASE58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Plain base58 (Bitcoin alphabet); each leading zero byte becomes a '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(BASE58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """The bytes of plain base58 text; ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        try:
            number = number * 58 + _BASE58_INDEX[char]
        except KeyError:
            raise ValueError(f"not base58: {char!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def encode_base58btc(data: bytes) -> str:
    """Multibase base58-btc: 'z' followed by base58."""
    return "z" + b58encode(data)


def decode_base58btc(text: str) -> bytes:
    """The bytes of a multibase base58-btc string; ValueError without the 'z' prefix or on a bad character."""
    if not text.startswith("z"):
        raise ValueError("multibase base58-btc must start with 'z'")
    return b58decode(text[1:])


def encode_base64url(data: bytes) -> str:
    """Multibase base64url without padding: 'u' followed by RFC 4648 section 5."""
    return "u" + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_base64url(text: str) -> bytes:
    """The bytes of a multibase base64url string (padding optional); ValueError if it is not one."""
    if not text.startswith("u"):
        raise ValueError("multibase base64url must start with 'u'")
    body = text[1:]
    if any(char in body for char in "+/"):
        raise ValueError("base64url must not contain '+' or '/'")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None

"""The QR payload of an annotated copy: ``OH1:`` + Base45(zlib(JSON)), drawn as an SVG QR code.

An annotated copy is a signed JSON credential of 3-5 KB, more than a QR code holds in byte mode
(2,953 bytes at version 40-L). As the EU digital COVID certificate does (``HC1:`` + Base45 of
zlib-compressed CBOR), the JSON is compressed with zlib and written in Base45 (RFC 9285), whose
45 characters are exactly the QR alphanumeric set (5.5 bits a character instead of 8), behind
the prefix ``OH1:`` (OneHub, format 1). Any JSON serialisation of the credential verifies: its
proof is over the RFC 8785 canonical form, which the verifier computes.
"""

from __future__ import annotations

import html
import json
import zlib
from typing import Any, Final

import segno

from catalog_schemas.errors import ValidationFailedError

PREFIX: Final = "OH1:"
ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE: Final = {c: i for i, c in enumerate(ALPHABET)}
# Bounds the decompressed size, so a crafted payload cannot expand without limit.
MAX_JSON_BYTES: Final = 256 * 1024


class QrPayloadError(ValidationFailedError):
    """Not an OH1 payload: bad prefix, Base45 alphabet or length, or not zlib-compressed JSON."""

    code = "qr_payload_invalid"


def b45encode(data: bytes) -> str:
    """Base45 (RFC 9285) of ``data``."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """The bytes of a Base45 (RFC 9285) string; QrPayloadError if it is not one."""
    try:
        values = [_VALUE[c] for c in text]
    except KeyError:
        raise QrPayloadError("a character outside the Base45 alphabet") from None
    if len(values) % 3 == 1:
        raise QrPayloadError("a Base45 string cannot be 1 more than a multiple of 3 long")
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i : i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 45 * 45
            if n > 0xFFFF:
                raise QrPayloadError("a Base45 triple above 65535")
            out += bytes(divmod(n, 256))
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise QrPayloadError("a Base45 pair above 255")
            out.append(n)
    return bytes(out)


def encode_copy(credential: dict[str, Any]) -> str:
    """The OH1 payload of a credential."""
    raw = json.dumps(credential, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return PREFIX + b45encode(zlib.compress(raw, 9))


def decode_copy(payload: str) -> dict[str, Any]:
    """The credential in an OH1 payload; QrPayloadError if it is not one."""
    if not payload.startswith(PREFIX):
        raise QrPayloadError(f"the payload does not start with {PREFIX}")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b45decode(payload[len(PREFIX) :]), MAX_JSON_BYTES)
    except zlib.error:
        raise QrPayloadError("the payload is not zlib-compressed") from None
    if inflater.unconsumed_tail:
        raise QrPayloadError(f"the payload expands past {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise QrPayloadError("the payload is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise QrPayloadError("the payload is not a JSON object")
    return value


def qr_svg(payload: str, *, title: str) -> str:
    """An inline SVG QR code of ``payload`` (error correction L, the smallest that fits)."""
    code = segno.make(payload, error="l", micro=False, boost_error=False)
    svg: str = code.svg_inline(
        scale=2, border=4, dark="#000", light="#fff", title=title, svgclass="qr", lineclass=None
    )
    # Named for assistive technology; the title is the caller's plain text, escaped here.
    label = html.escape(title, quote=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)

"""The bitstring of a W3C Bitstring Status List: MSB-first bits, GZIP, multibase base64url.

Index 0 is the left-most (most significant) bit of the first byte: bit ``i`` is
``(byte[i // 8] >> (7 - i % 8)) & 1``. The encoded form is ``u`` + base64url without padding of
the GZIP-compressed bytes. Decoding is bounded before it starts (the encoded text) and while it
runs (the decompressed size), so a hostile list cannot be a compression bomb.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Iterable
from typing import Final

from license_store.error import StatusListError

# The spec's minimum: 16 KiB, so one set bit says little about which credential it belongs to.
MIN_ENTRIES: Final = 131_072
MULTIBASE_BASE64URL: Final = "u"
# 2**27 entries (16 MiB) is far above any list we publish; it bounds what a verifier inflates.
MAX_ENTRIES: Final = 1 << 27
MAX_ENCODED_CHARS: Final = 4 * 1024 * 1024
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
# wbits 16 + 15: a gzip header and trailer around a deflate stream.
_GZIP_WBITS: Final = 31


def new_bits(entries: int = MIN_ENTRIES) -> bytearray:
    """Return an all-zero bitstring of ``entries`` bits (a multiple of 8)."""
    if entries <= 0 or entries % 8 or entries > MAX_ENTRIES:
        raise StatusListError(
            f"a status list has a positive multiple of 8 entries up to {MAX_ENTRIES}"
        )
    return bytearray(entries // 8)


def set_bit(bits: bytearray, index: int, value: bool = True) -> None:
    """Set (or clear) the bit at ``index``, most significant bit first."""
    _check_index(bits, index)
    mask = 0x80 >> (index % 8)
    if value:
        bits[index // 8] |= mask
    else:
        bits[index // 8] &= ~mask & 0xFF


def get_bit(bits: bytes | bytearray, index: int) -> int:
    """Return the bit at ``index`` (0 or 1), most significant bit first."""
    _check_index(bits, index)
    return (bits[index // 8] >> (7 - index % 8)) & 1


def set_indices(bits: bytes | bytearray) -> list[int]:
    """Return the indices of every set bit, in order."""
    return [
        offset * 8 + position
        for offset, byte in enumerate(bits)
        if byte
        for position in range(8)
        if byte & (0x80 >> position)
    ]


def bits_with(indices: Iterable[int], entries: int = MIN_ENTRIES) -> bytearray:
    """Return a bitstring of ``entries`` bits with the given indices set."""
    bits = new_bits(entries)
    for index in indices:
        set_bit(bits, index)
    return bits


def encode(bits: bytes | bytearray) -> str:
    """Return the ``encodedList`` value: ``u`` + base64url(gzip(bits)), no padding."""
    if len(bits) * 8 > MAX_ENTRIES:
        raise StatusListError(f"a status list has at most {MAX_ENTRIES} entries")
    # mtime=0: the same bits always give the same text (gzip would otherwise stamp the time).
    packed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode(encoded: str, *, multibase: bool = True, max_entries: int = MAX_ENTRIES) -> bytes:
    """Decode an ``encodedList`` into its bytes; raise StatusListError on anything malformed.

    ``multibase=False`` reads the bare base64url that early implementations wrote (no ``u``).
    """
    if not isinstance(encoded, str) or not 0 < len(encoded) <= MAX_ENCODED_CHARS:
        raise StatusListError("encodedList is missing or too long")
    if multibase:
        if not encoded.startswith(MULTIBASE_BASE64URL):
            raise StatusListError("encodedList is not multibase base64url (no 'u' prefix)")
        encoded = encoded[1:]
    if not _BASE64URL.fullmatch(encoded) or len(encoded) % 4 == 1:
        raise StatusListError("encodedList is not base64url")
    try:
        packed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise StatusListError("encodedList is not base64url") from None
    limit = max_entries // 8
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        bits = inflater.decompress(packed, limit + 1)
    except zlib.error:
        raise StatusListError("encodedList is not GZIP data") from None
    if len(bits) > limit or inflater.unconsumed_tail:
        raise StatusListError(f"encodedList holds more than {max_entries} entries")
    if not inflater.eof or inflater.unused_data:
        raise StatusListError("encodedList is truncated or has data after the GZIP stream")
    return bits


def _check_index(bits: bytes | bytearray, index: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(bits) * 8:
        raise StatusListError(
            f"index {index!r} is outside the status list (0..{len(bits) * 8 - 1})",
            code="status_list_range",
        )

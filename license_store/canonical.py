"""RFC 8785 JSON Canonicalization Scheme (JCS), and a strict JSON reader for what we verify.

The canonical form itself comes from the ``rfc8785`` package; this module adds the parts a
verifier needs around it: a reader that refuses what JCS cannot represent faithfully (duplicate
keys, NaN, -0, numbers outside binary64) and limits on size and nesting checked before any
recursive work is done.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import rfc8785

from license_store.error import CanonicalizationError

MAX_DEPTH: Final = 32
MAX_NODES: Final = 20_000
MAX_JSON_BYTES: Final = 1 << 20

# I-JSON / JCS integers are IEEE-754 doubles; beyond this an int is not exact any more.
_SAFE_INT: Final = 2**53 - 1
_BMP_MAX: Final = "\uffff"

# For "plain" values (exact str, bool, None, dict with str keys free of characters above U+FFFF,
# list, and int within +-(2**53 - 1)) msgspec's encoder with sorted keys writes exactly RFC 8785:
# keys sorted by code point equal keys sorted by UTF-16 code unit inside the BMP, integers are
# plain digits, and its string escapes (\b \t \n \f \r, other controls as lower-case \u00xx,
# nothing else; U+2028, U+2029 and DEL stay literal) are the ones JCS prescribes. It runs in C,
# about nine times faster than the standard library's encoder and far faster than ``rfc8785``;
# anything else (floats above all) goes through ``rfc8785``. tests/license_store/test_fast_path.py
# checks the byte equality over generated documents.
_PLAIN_ENCODER: Final = msgspec.json.Encoder(order="sorted")


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON-compatible value."""
    if scan(value):
        try:
            return _PLAIN_ENCODER.encode(value)
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 say so
    try:
        return rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalizationError(f"value cannot be canonicalized: {exc}") from None


def canonicalize_plain(value: Any) -> bytes:
    """Canonicalize a value the caller built from plain parts, skipping the scan.

    The caller guarantees what the scan would check: no floats, integers within +-(2**53 - 1),
    str keys without characters above U+FFFF, and bounded size. Issuance builds credentials
    from validated records and uses this for records without float fields. A lone surrogate, or
    a str or int subclass (msgspec refuses those), still goes through :func:`canonicalize`.
    """
    try:
        return _PLAIN_ENCODER.encode(value)
    except (UnicodeEncodeError, TypeError):
        return canonicalize(value)


def encode_plain(value: Any) -> bytes | None:
    """Canonicalize a plain value (see :func:`canonicalize_plain`), or None if msgspec refuses it.

    Unlike :func:`canonicalize_plain` there is no fallback, so ``value`` may hold
    ``msgspec.Raw`` fragments the caller has already canonicalized (written as they are); on
    None (a str or int subclass, a lone surrogate) the caller takes its general path.
    """
    try:
        return _PLAIN_ENCODER.encode(value)
    except (UnicodeEncodeError, TypeError):
        return None


def scan(value: object) -> bool:
    """Check size and depth like :func:`check_bounds`; return whether the value is plain.

    Plain: dicts, lists, strings, booleans, null and integers within +-(2**53 - 1), with str keys
    free of characters above U+FFFF: what the standard library encoder writes as RFC 8785.
    """
    try:
        plain = _scan(value, 1, [0])
    except _Bounds as exc:
        raise CanonicalizationError(str(exc)) from None
    if not plain:
        # The scan does not descend into tuples or other mappings: the general walk does.
        check_bounds(value)
    return plain


class _Bounds(Exception):
    pass


def _scan(value: object, depth: int, nodes: list[int]) -> bool:
    # Recursion is bounded by MAX_DEPTH, which is checked before descending.
    nodes[0] += 1
    if nodes[0] > MAX_NODES:
        raise _Bounds(f"JSON value has more than {MAX_NODES} nodes")
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_SAFE_INT <= value <= _SAFE_INT  # type: ignore[operator]
    if kind is dict:
        if depth >= MAX_DEPTH and value:
            raise _Bounds(f"JSON value nests deeper than {MAX_DEPTH}")
        plain = True
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or (not key.isascii() and max(key) > _BMP_MAX):
                plain = False
            if not _scan(item, depth + 1, nodes):
                plain = False
        return plain
    if kind is list:
        if depth >= MAX_DEPTH and value:
            raise _Bounds(f"JSON value nests deeper than {MAX_DEPTH}")
        plain = True
        for item in value:  # type: ignore[attr-defined]
            if not _scan(item, depth + 1, nodes):
                plain = False
        return plain
    # Floats, tuples, other mappings, anything else: rfc8785 decides (after check_bounds).
    return False


def serialize_number(number: float) -> str:
    """Return the ECMAScript/JCS serialization of one binary64 number."""
    # rfc8785 has no public number serializer; an array of one element is written "[n]".
    return canonicalize([float(number)])[1:-1].decode("ascii")


def check_bounds(value: object, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise CanonicalizationError when a value nests deeper or holds more nodes than allowed."""
    # Iterative on purpose: the point is to refuse hostile input before anything recurses on it.
    stack: list[tuple[object, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise CanonicalizationError(f"JSON value has more than {max_nodes} nodes")
        if isinstance(item, Mapping):
            children: Sequence[object] = list(item.values())
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= max_depth and children:
            raise CanonicalizationError(f"JSON value nests deeper than {max_depth}")
        stack.extend((child, depth + 1) for child in children)


def parse_json(data: bytes | str, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse JSON strictly (UTF-8, no duplicate keys, no NaN or -0, bounded size and depth)."""
    if len(data) > max_bytes:
        raise CanonicalizationError(
            f"JSON text is larger than {max_bytes} bytes", code="malformed_json"
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalizationError(
            f"not valid JSON: {type(exc).__name__}", code="malformed_json"
        ) from None
    except ValueError as exc:
        raise CanonicalizationError(str(exc), code="malformed_json") from None
    check_bounds(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            # Two parsers may keep different duplicates; what is signed must be unambiguous.
            raise ValueError("JSON object has a duplicate key")
        result[key] = item
    return result


def _parse_int(text: str) -> int | float:
    number = int(text)
    if number == 0 and text.startswith("-"):
        raise ValueError("JSON number -0 is not allowed (RFC 8785 erratum 7920)")
    if -_SAFE_INT <= number <= _SAFE_INT:
        return number
    # What a JavaScript signer would have seen and canonicalized: the nearest double.
    return _parse_float(text)


def _parse_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError("JSON number is outside the binary64 range")
    if number == 0 and text.startswith("-"):
        raise ValueError("JSON number -0 is not allowed (RFC 8785 erratum 7920)")
    return number


def _reject_constant(text: str) -> Any:
    raise ValueError(f"JSON constant {text} is not allowed")

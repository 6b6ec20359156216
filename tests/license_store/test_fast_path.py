"""The fast paths issuance uses give exactly what the reference implementations give."""

from __future__ import annotations

import random

import base58
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from license_store.canonical import canonicalize, canonicalize_plain
from license_store.error import CanonicalizationError
from license_store.identifier import IdentifierScope, format_identifier, parse_identifier
from license_store.multikey import b58decode, b58encode, encode_base58btc
from license_store.proof import encode_signatures

# JSON values of every kind, keys and strings across the BMP and beyond (not lone surrogates).
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=30,
)


_bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12)
_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_bmp_text, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_canonicalize_equals_rfc8785(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(_plain)
def test_canonicalize_plain_equals_rfc8785_on_what_issuance_builds(value: object) -> None:
    assert canonicalize_plain(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


def test_key_order_is_utf16_even_where_code_points_disagree() -> None:
    # U+1F602 sorts before U+FB33 in UTF-16 code units, after it in code points.
    value = {"\ufb33": 1, "\U0001f602": 2, "a": 3.5, "b": [1.0, 1e21]}
    assert canonicalize(value) == rfc8785.dumps(value)
    text = canonicalize(value)
    assert text.index("\U0001f602".encode()) < text.index("\ufb33".encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_base58_equals_the_reference(data: bytes) -> None:
    encoded = b58encode(data)
    assert encoded == base58.b58encode(data).decode("ascii")
    assert b58decode(encoded) == data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", max_size=90))
def test_every_base58_string_is_the_one_spelling_of_its_bytes(text: str) -> None:
    # Why decode_base58btc needs no re-encoding check: decoding is one-to-one.
    assert b58encode(b58decode(text)) == text


@settings(max_examples=300, deadline=None)
@given(serial=st.integers(0, 10**10 - 1), version=st.integers(1, 999))
def test_identifier_scope_equals_format_identifier(serial: int, version: int) -> None:
    scope = IdentifierScope("11440000000000050C001", "11440000000000050C")
    text = scope.format(serial, version)
    assert text == format_identifier(
        type_code=scope.type_code, issuer_code=scope.issuer_code, serial=serial, version=version
    )
    assert parse_identifier(text).serial == serial


# What the msgspec fast path must get right, stressed on purpose: every C0 control, DEL, the
# JavaScript line separators, non-ASCII BMP text, astral characters (in values; keys beside
# U+E000-U+FFFF where UTF-16 and code-point order disagree go through rfc8785), and integers at
# and beyond the binary64-safe edge.
_tricky_chars = st.sampled_from(
    [chr(c) for c in range(0x20)]
    + ["\x7f", "\u2028", "\u2029", '"', "\\", "/", "é", "中", "\ufb33", "\uffff", "\U0001f602"]
)
_tricky_text = st.text(_tricky_chars | st.characters(exclude_categories=("Cs",)), max_size=16)
_tricky_keys = st.text(
    _tricky_chars.filter(lambda c: c <= "\uffff")
    | st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)),
    max_size=8,
)
_edge_ints = st.sampled_from([0, 1, -1, 2**53 - 1, -(2**53 - 1)]) | st.integers(
    -(2**53) + 1, 2**53 - 1
)
_tricky_plain = st.recursive(
    st.none() | st.booleans() | _edge_ints | _tricky_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_tricky_keys, inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(_tricky_plain)
def test_fast_path_equals_rfc8785_on_controls_non_ascii_and_astral(value: object) -> None:
    expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    assert canonicalize_plain(value) == expected
    assert canonicalize(value) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=4)
        | st.sampled_from(["\U0001f602", "\ufb33", "\ue000"]),
        _tricky_text | st.integers(-(2**70), 2**70),
        max_size=6,
    )
)
def test_canonicalize_falls_back_for_astral_keys_and_large_ints(value: dict[str, object]) -> None:
    # Keys above U+FFFF and integers beyond 2**53 - 1 are not plain: rfc8785 decides, the same
    # bytes or the same refusal.
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
    else:
        assert canonicalize(value) == expected


def test_subclasses_and_lone_surrogates_leave_the_fast_path() -> None:
    class Code(str):
        pass

    value = {Code("b"): Code("x"), "a": [1, "\u2028"]}
    assert canonicalize_plain(value) == rfc8785.dumps(value)  # type: ignore[arg-type]
    with pytest.raises(CanonicalizationError):
        canonicalize_plain({"a": "\ud800"})


# 64-byte values (Ed25519 signatures), some with leading zero bytes (written as "1"s), up to all.
_signatures = st.binary(min_size=64, max_size=64) | st.builds(
    lambda zeros, rest: (b"\0" * zeros + rest)[:64],
    st.integers(1, 64),
    st.binary(min_size=64, max_size=64),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_signatures, min_size=1, max_size=40) | st.lists(st.binary(max_size=80), max_size=5)
)
def test_batch_proof_values_equal_one_by_one_base58btc(signatures: list[bytes]) -> None:
    expected = [encode_base58btc(value).encode("ascii") for value in signatures]
    assert encode_signatures(signatures) == expected


def test_batch_proof_values_over_many_rows_and_the_extremes() -> None:
    # More than one matrix product's rows, the largest value (the longest carry chains) and
    # the smallest ones.
    rng = random.Random(5)
    signatures = [rng.randbytes(64) for _ in range(700)]
    signatures[3] = b"\xff" * 64
    signatures[300] = b"\0" * 64
    signatures[301] = b"\0" * 63 + b"\x01"
    signatures[650] = b"\xff" * 63 + b"\xfe"
    expected = [encode_base58btc(value).encode("ascii") for value in signatures]
    assert encode_signatures(signatures) == expected


def test_batch_proof_values_keep_blas_in_the_calling_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenBLAS would split each product across every core and leave its threads spinning after
    # it (a core taken from issuance and the database); inside, BLAS gets one thread, and its
    # setting is given back afterwards.
    from threadpoolctl import threadpool_info

    from license_store import proof

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    assert before, "numpy's BLAS is not visible to threadpoolctl"
    seen: list[list[int]] = []
    encode_rows = proof._encode_rows

    def spy(signatures: list[bytes]) -> list[bytes]:
        seen.append(blas_threads())
        return encode_rows(signatures)

    monkeypatch.setattr(proof, "_encode_rows", spy)
    rng = random.Random(6)
    signatures = [rng.randbytes(64) for _ in range(600)]
    assert encode_signatures(signatures) == [
        encode_base58btc(value).encode("ascii") for value in signatures
    ]
    assert seen == [[1] * len(before)] * 3
    assert blas_threads() == before

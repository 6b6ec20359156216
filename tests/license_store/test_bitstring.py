"""Bitstring Status List encoding: the collected vectors (both bit-order traps), bounds."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from license_store import bitstring
from license_store.error import StatusListError

CASES = Path(__file__).parents[1] / "vectors" / "bitstring_status_list" / "bitstring_cases.json"

# What ../shared/vectors/INDEX.md §7 says each case decodes to (MSB-first): (bits, set indices).
EXPECTED = {
    "w3c-spec-example-all-zero": (131_072, []),
    "digitalbazaar-100k-all-zero": (100_000, []),
    "digitalbazaar-100k-index50000-set": (100_000, [50_000]),
    "digitalbazaar-bitstring-8bit-ltr": (8, [1, 4]),
    # Trap 1: a right-to-left (LSB-first) reader would say {1, 4}.
    "digitalbazaar-bitstring-8bit-rtl-LEGACY": (8, [3, 6]),
    # Trap 2: named "50K revoked" upstream; MSB-first it is bit 50007, and 50000 is clear.
    "digitalbazaar-mock-credential-list-TRAP": (100_000, [50_007]),
}


def _cases() -> dict[str, dict[str, Any]]:
    return {case["id"]: case for case in json.loads(CASES.read_text(encoding="utf-8"))["cases"]}


def test_every_collected_case_is_expected() -> None:
    assert set(_cases()) == set(EXPECTED)


@pytest.mark.parametrize("case_id", sorted(EXPECTED))
def test_vector_decodes_to_the_listed_bits(case_id: str) -> None:
    case = _cases()[case_id]
    bits = bitstring.decode(case["encodedList"], multibase=case["multibase_prefixed"])
    length, indices = EXPECTED[case_id]
    assert len(bits) * 8 == length
    assert bitstring.set_indices(bits) == indices
    # The collector's own decoding agrees (a second reading of the same upstream data).
    assert indices == case["derived_by_decoding"]["set_bit_indices_msb_first"]
    for index in indices:
        assert bitstring.get_bit(bits, index) == 1


def test_the_bit_order_traps() -> None:
    cases = _cases()
    ltr = bitstring.decode(
        cases["digitalbazaar-bitstring-8bit-ltr"]["encodedList"], multibase=False
    )
    rtl = bitstring.decode(
        cases["digitalbazaar-bitstring-8bit-rtl-LEGACY"]["encodedList"], multibase=False
    )
    assert (ltr, rtl) == (b"\x48", b"\x12")
    assert [bitstring.get_bit(rtl, i) for i in range(8)] == [0, 0, 0, 1, 0, 0, 1, 0]
    trap = bitstring.decode(cases["digitalbazaar-mock-credential-list-TRAP"]["encodedList"])
    assert (bitstring.get_bit(trap, 50_000), bitstring.get_bit(trap, 50_007)) == (0, 1)


def test_w3c_example_statuses_and_range_error() -> None:
    bits = bitstring.decode(_cases()["w3c-spec-example-all-zero"]["encodedList"])
    assert [bitstring.get_bit(bits, i) for i in (94_567, 23_452, 12_345)] == [0, 0, 0]
    with pytest.raises(StatusListError) as caught:
        bitstring.get_bit(bits, 492_847)
    assert caught.value.code == "status_list_range"


def test_our_encoding_is_what_the_spec_describes() -> None:
    bits = bitstring.bits_with([0, 9, 131_071])
    encoded = bitstring.encode(bits)
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    # Index 0 is the left-most bit of byte 0; index 9 the second bit of byte 1.
    assert raw[0] == 0x80 and raw[1] == 0x40 and raw[-1] == 0x01 and len(raw) == 16_384
    assert bitstring.decode(encoded) == bits
    assert bitstring.encode(bits) == encoded  # mtime=0: the same bits, the same text


@settings(max_examples=50, deadline=None)
@given(st.sets(st.integers(0, bitstring.MIN_ENTRIES - 1), max_size=64))
def test_round_trip(indices: set[int]) -> None:
    decoded = bitstring.decode(bitstring.encode(bitstring.bits_with(indices)))
    assert bitstring.set_indices(decoded) == sorted(indices)


def _u(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "z" + _u(gzip.compress(b"\0" * 16))[1:],  # base58btc prefix
        "u!!!!",
        "u" + "A" * 5,  # impossible base64 length
        _u(b"not gzip at all"),
        _u(gzip.compress(b"\0" * 16)[:-4]),  # truncated
        _u(gzip.compress(b"\0" * 16) + b"junk"),
    ],
)
def test_malformed_lists_are_refused(encoded: str) -> None:
    with pytest.raises(StatusListError):
        bitstring.decode(encoded)


def test_a_compression_bomb_is_stopped_at_the_bound() -> None:
    bomb = _u(gzip.compress(b"\0" * (bitstring.MAX_ENTRIES // 8 + 1)))
    assert len(bomb) < 100_000  # small text, huge inflation
    with pytest.raises(StatusListError, match="more than"):
        bitstring.decode(bomb)
    assert len(bitstring.decode(bomb, max_entries=bitstring.MAX_ENTRIES * 2)) > 0


def test_bad_indices_and_sizes() -> None:
    bits = bitstring.new_bits()
    for index in (-1, bitstring.MIN_ENTRIES, True, "3"):
        with pytest.raises(StatusListError):
            bitstring.set_bit(bits, index)  # type: ignore[arg-type]
    for entries in (0, 7, bitstring.MAX_ENTRIES + 8):
        with pytest.raises(StatusListError):
            bitstring.new_bits(entries)
    bitstring.set_bit(bits, 5)
    bitstring.set_bit(bits, 5, False)
    assert bitstring.set_indices(bits) == []

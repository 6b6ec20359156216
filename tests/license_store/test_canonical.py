"""RFC 8785 canonical JSON against the cyberphone test data, and the strict reader."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from license_store.canonical import canonicalize, check_bounds, parse_json, serialize_number
from license_store.error import CanonicalizationError

JCS = Path(__file__).parents[1] / "vectors" / "jcs"
NAMES = ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_jcs_input_canonicalizes_to_expected_bytes(name: str) -> None:
    expected = (JCS / "output" / f"{name}.json").read_bytes()
    assert bytes.fromhex("".join((JCS / "outhex" / f"{name}.txt").read_text().split())) == expected
    assert canonicalize(parse_json((JCS / "input" / f"{name}.json").read_bytes())) == expected


def test_es6_number_serialization_first_10000_lines() -> None:
    lines = (JCS / "es6numbers_first10000.txt").read_text().splitlines()
    assert len(lines) == 10_000
    mismatches = []
    for line in lines:
        bits, expected = line.split(",")
        number = struct.unpack(">d", bytes.fromhex(bits.zfill(16)))[0]
        if serialize_number(number) != expected:
            mismatches.append(line)
    assert mismatches == []


@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        ("8000000000000000", "0"),
        ("1", "5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
    ],
)
def test_notable_numbers(bits: str, expected: str) -> None:
    assert serialize_number(struct.unpack(">d", bytes.fromhex(bits.zfill(16)))[0]) == expected


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": NaN}',
        b"[Infinity]",
        b"[-0]",
        b"[-0.0]",
        b"[1e400]",
        b'{"a": 1',
        b"\xff\xfe{}",
        b'["\xc3"]',
    ],
)
def test_strict_reader_refuses(text: bytes) -> None:
    with pytest.raises(CanonicalizationError):
        parse_json(text)


def test_unsafe_integer_becomes_the_double_a_javascript_signer_saw() -> None:
    assert canonicalize(parse_json(b"[12345678901234567890]")) == b"[12345678901234567000]"
    assert canonicalize(parse_json(b"[9007199254740991]")) == b"[9007199254740991]"


def test_lone_surrogate_cannot_be_canonicalized() -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(parse_json(b'["\\ud800"]'))


def test_size_and_depth_are_bounded_before_work() -> None:
    with pytest.raises(CanonicalizationError):
        parse_json(b"[" + b"0," * 600_000 + b"0]")
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(CanonicalizationError):
        check_bounds(deep)
    with pytest.raises(CanonicalizationError):
        parse_json(b"[" * 5000 + b"]" * 5000)
    check_bounds([[["fine"]]])
    with pytest.raises(CanonicalizationError):
        check_bounds(list(range(30_000)))

"""National e-license identifiers: ``1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>``.

``type`` is the type definer's 18-character unified social credit code followed by a 3-digit
sequence, ``issuer`` the issuing department's credit code, ``serial`` a 10-digit number fixed for
a record across its versions, ``version`` 3 digits from 001, and ``check`` the ISO 7064
MOD 37,36 check character over type + issuer + serial + version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from stdnum.iso7064 import mod_37_36

from license_store.error import LicenseIdentifierError

PREFIX: Final = "1.2.156.3005.2"
SERIAL_DIGITS: Final = 10
VERSION_DIGITS: Final = 3
MAX_SERIAL: Final = 10**SERIAL_DIGITS - 1
MAX_VERSION: Final = 10**VERSION_DIGITS - 1
MAX_CHARS: Final = 96

# GB 32100 credit codes use digits and capitals without I, O, Z, S, V.
_CREDIT_CODE: Final = r"[0-9A-HJ-NPQRTUWXY]{18}"
_TYPE_CODE: Final = re.compile(_CREDIT_CODE + r"\d{3}")
_ISSUER_CODE: Final = re.compile(_CREDIT_CODE)
_IDENTIFIER: Final = re.compile(
    re.escape(PREFIX)
    + rf"\.(?P<type>[0-9A-Z]+)\.(?P<issuer>[0-9A-Z]+)\.(?P<serial>\d{{{SERIAL_DIGITS}}})"
    + rf"\.(?P<version>\d{{{VERSION_DIGITS}}})\.(?P<check>[0-9A-Z])"
)


@dataclass(frozen=True)
class LicenseIdentifier:
    """The parts of a license identifier."""

    type_code: str
    issuer_code: str
    serial: int
    version: int

    def __post_init__(self) -> None:
        if not _TYPE_CODE.fullmatch(self.type_code):
            raise LicenseIdentifierError(
                "license type code must be an 18-character credit code and a 3-digit sequence",
                reason="license_id_type_code",
            )
        if not _ISSUER_CODE.fullmatch(self.issuer_code):
            raise LicenseIdentifierError(
                "issuer code must be an 18-character unified social credit code",
                reason="license_id_issuer_code",
            )
        if not 0 <= self.serial <= MAX_SERIAL:
            raise LicenseIdentifierError(
                f"serial must be 0..{MAX_SERIAL}", reason="license_id_serial"
            )
        if not 1 <= self.version <= MAX_VERSION:
            raise LicenseIdentifierError(
                f"version must be 1..{MAX_VERSION}", reason="license_id_version"
            )

    @property
    def check(self) -> str:
        """The MOD 37,36 check character."""
        return mod_37_36.calc_check_digit(self._body())

    def _body(self) -> str:
        return (
            f"{self.type_code}{self.issuer_code}"
            f"{self.serial:0{SERIAL_DIGITS}d}{self.version:0{VERSION_DIGITS}d}"
        )

    def __str__(self) -> str:
        return (
            f"{PREFIX}.{self.type_code}.{self.issuer_code}."
            f"{self.serial:0{SERIAL_DIGITS}d}.{self.version:0{VERSION_DIGITS}d}.{self.check}"
        )


def format_identifier(*, type_code: str, issuer_code: str, serial: int, version: int) -> str:
    """Return the identifier string of a license version."""
    return str(LicenseIdentifier(type_code, issuer_code, serial, version))


def parse_identifier(text: str) -> LicenseIdentifier:
    """Parse and check an identifier; raise LicenseIdentifierError naming what is wrong."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        raise LicenseIdentifierError(
            "license identifier is not a string of sane length", reason="license_id_format"
        )
    match = _IDENTIFIER.fullmatch(text)
    if match is None:
        raise LicenseIdentifierError(
            f"license identifier must be {PREFIX}.<type>.<issuer>.<serial>.<version>.<check>",
            reason="license_id_format",
        )
    identifier = LicenseIdentifier(
        match["type"], match["issuer"], int(match["serial"]), int(match["version"])
    )
    if identifier.check != match["check"]:
        raise LicenseIdentifierError(
            "license identifier check character is wrong", reason="license_id_check"
        )
    return identifier


_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MODULUS: Final = len(_ALPHABET)


class IdentifierScope:
    """Identifiers of one (type code, issuer code): validated once, formatted fast in a batch.

    ISO 7064 MOD 37,36 is a running state over the characters, so the state after the 39
    characters of type and issuer code is computed once, the state after the first nine serial
    digits once per ten consecutive serials, and the check character of each (state, last digit,
    version) once. The result equals :func:`format_identifier` (the tests check it).
    """

    def __init__(self, type_code: str, issuer_code: str) -> None:
        LicenseIdentifier(type_code, issuer_code, 0, 1)  # raises LicenseIdentifierError
        self.type_code = type_code
        self.issuer_code = issuer_code
        self._prefix = f"{PREFIX}.{type_code}.{issuer_code}."
        self._state = _fold(_MODULUS // 2, type_code + issuer_code)
        # serial // 10 -> (state after its nine digits, the identifier up to them);
        # (that state, serial % 10, version) -> the rest of the identifier, check included.
        self._heads: dict[int, tuple[int, str]] = {}
        self._tails: dict[tuple[int, int, int], str] = {}

    def format(self, serial: int, version: int) -> str:
        """Return the identifier string of one license version."""
        if not 0 <= serial <= MAX_SERIAL or not 1 <= version <= MAX_VERSION:
            LicenseIdentifier(self.type_code, self.issuer_code, serial, version)  # raises
        head, last = divmod(serial, 10)
        found = self._heads.get(head)
        if found is None:
            if len(self._heads) >= _MEMO:
                self._heads.clear()
            digits = f"{head:0{SERIAL_DIGITS - 1}d}"
            found = self._heads[head] = (_fold(self._state, digits), self._prefix + digits)
        state, text = found
        tail = self._tails.get((state, last, version))
        if tail is None:
            # At most 36 states x 10 digits x the versions in use: small.
            version_text = f"{version:0{VERSION_DIGITS}d}"
            end = _fold(state, f"{last}{version_text}")
            check = _ALPHABET[(1 - ((end or _MODULUS) * 2) % (_MODULUS + 1)) % _MODULUS]
            tail = self._tails[(state, last, version)] = f"{last}.{version_text}.{check}"
        return text + tail


# Bound on the per-scope memo of serial prefixes (a batch's serials are consecutive).
_MEMO: Final = 4096


def _fold(state: int, text: str) -> int:
    for char in text:
        state = (((state or _MODULUS) * 2) % (_MODULUS + 1) + _ALPHABET.index(char)) % _MODULUS
    return state

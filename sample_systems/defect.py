"""Dirty rows: which defects a source can carry, which rows get them, and applying them.

Each dirty row has exactly one defect. The hub must quarantine four kinds and load two after
normalising them (a legacy 15-digit number is converted to 18 digits, full-width digits are folded).
Which kinds apply to a source follows from the catalog: ID defects where a natural person's ID
field exists, ``date_order`` where the license type declares date pairs, ``duplicate_license_no``
only where the connector's primary key is not the license number (else two rows with different
keys cannot share a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from catalog_schemas.model import LicenseType, Source
from sample_systems.identifier import fullwidth_form, legacy_form, with_wrong_check_char

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]
Dates = npt.NDArray[np.datetime64]

DefectKind = Literal[
    "wrong_check_char",
    "legacy_15_digit",
    "fullwidth_digits",
    "missing_required",
    "date_order",
    "duplicate_license_no",
]
DEFECT_KINDS: Final[tuple[DefectKind, ...]] = get_args(DefectKind)
QUARANTINED_KINDS: Final[frozenset[DefectKind]] = frozenset(
    {"wrong_check_char", "missing_required", "date_order", "duplicate_license_no"}
)


@dataclass(frozen=True)
class Defect:
    """Row ``row`` (0-based, in source order) has ``kind`` in ``field``."""

    row: int
    kind: DefectKind
    field: str
    copy_of: int | None = None  # for the second row of a duplicate pair: the first row


def person_id_fields(license_type: LicenseType) -> tuple[str, ...]:
    """Fields that may hold a natural person's resident ID number."""
    return tuple(h.id_field for h in license_type.holders if "natural_person" in h.kinds)


def required_name_fields(license_type: LicenseType) -> tuple[str, ...]:
    """Holders' name fields that the license type requires (emptied by ``missing_required``)."""
    names = [h.name_field for h in license_type.holders if h.name_field is not None]
    return tuple(n for n in names if license_type.field(n).required)


def applicable_kinds(source: Source, license_type: LicenseType) -> tuple[DefectKind, ...]:
    """The defect kinds this source can carry, in a fixed order."""
    kinds: list[DefectKind] = []
    if person_id_fields(license_type):
        kinds += ["wrong_check_char", "legacy_15_digit", "fullwidth_digits"]
    if required_name_fields(license_type):
        kinds.append("missing_required")
    if license_type.date_order:
        kinds.append("date_order")
    number_column = source.mapping[license_type.license_no_field].column
    if number_column != source.connector.primary_key:
        kinds.append("duplicate_license_no")
    # Duplicates go first: they need two adjacent free rows.
    return tuple(sorted(kinds, key=lambda k: (k != "duplicate_license_no", DEFECT_KINDS.index(k))))


def planned_counts(n: int, kinds: tuple[DefectKind, ...], rate: float) -> dict[DefectKind, int]:
    """Rows per kind: ``rate`` of the rows shared evenly, at least one (a pair for duplicates)."""
    if rate <= 0 or not kinds:
        return {}
    each = rate * n / len(kinds)
    counts: dict[DefectKind, int] = {}
    for kind in kinds:
        counts[kind] = (
            2 * max(1, round(each / 2)) if kind == "duplicate_license_no" else max(1, round(each))
        )
    return counts


def plan(
    rng: np.random.Generator,
    *,
    n: int,
    counts: dict[DefectKind, int],
    persons: dict[str, I64],
    birth_year: I64,
    protected: Bools,
    name_fields: tuple[str, ...],
    date_pairs: tuple[tuple[str, str], ...],
    license_field: str,
    batch_size: int,
    what: str,
) -> list[Defect]:
    """Choose the dirty rows; protected rows (the demo holders') stay clean."""
    free = ~protected.copy()
    defects: list[Defect] = []
    id_fields = list(persons)
    is_person = (
        np.stack([persons[f] >= 0 for f in id_fields]) if id_fields else np.zeros((0, n), bool)
    )
    born_19xx = (
        np.stack(
            [(persons[f] >= 0) & (birth_year[np.maximum(persons[f], 0)] < 2000) for f in id_fields]
        )
        if id_fields
        else np.zeros((0, n), bool)
    )
    for kind, count in counts.items():
        if kind == "duplicate_license_no":
            defects += _pairs(rng, free, count // 2, license_field, batch_size, what)
            continue
        if kind in ("wrong_check_char", "fullwidth_digits"):
            eligible_fields = is_person
        elif kind == "legacy_15_digit":
            eligible_fields = born_19xx
        else:
            eligible_fields = np.ones((1, n), dtype=bool)
        pool = np.flatnonzero(free & eligible_fields.any(axis=0))
        if pool.size < count:
            raise ValueError(
                f"{what}: {count} rows wanted for {kind} but only {pool.size} can take it; "
                "lower dirty_rate or raise the sizes"
            )
        rows = np.sort(rng.choice(pool, count, replace=False))
        free[rows] = False
        for row in rows.tolist():
            if kind == "missing_required":
                name = name_fields[int(rng.integers(0, len(name_fields)))]
            elif kind == "date_order":
                name = date_pairs[int(rng.integers(0, len(date_pairs)))][1]
            else:
                options = np.flatnonzero(eligible_fields[:, row])
                name = id_fields[int(options[rng.integers(0, options.size)])]
            defects.append(Defect(row=row, kind=kind, field=name))
    return sorted(defects, key=lambda d: d.row)


def _pairs(
    rng: np.random.Generator,
    free: Bools,
    pairs: int,
    license_field: str,
    batch_size: int,
    what: str,
) -> list[Defect]:
    # Both copies sit next to each other in keyset order and never straddle a page boundary, so
    # the connector hands them to the gate in the same batch.
    n = free.size
    starts = np.flatnonzero(
        free[:-1] & free[1:] & (np.arange(n - 1) % batch_size != batch_size - 1)
    )
    chosen: list[int] = []
    for start in rng.permutation(starts).tolist():
        if len(chosen) == pairs:
            break
        if free[start] and free[start + 1]:
            free[start : start + 2] = False
            chosen.append(start)
    if len(chosen) < pairs:
        raise ValueError(
            f"{what}: no room for {pairs} duplicate pairs; lower dirty_rate or raise the sizes"
        )
    defects: list[Defect] = []
    for row in chosen:
        defects.append(Defect(row=row, kind="duplicate_license_no", field=license_field))
        defects.append(
            Defect(row=row + 1, kind="duplicate_license_no", field=license_field, copy_of=row)
        )
    return defects


def apply(
    rng: np.random.Generator,
    defects: list[Defect],
    *,
    text: dict[str, Objects],
    dates: dict[str, Dates],
    date_pairs: tuple[tuple[str, str], ...],
    watermark: Dates | None,
) -> list[str]:
    """Apply the defects in place; return the non-canonical ID strings written."""
    earlier_of = {later: earlier for earlier, later in date_pairs}
    variants: list[str] = []
    for defect in defects:
        row, name = defect.row, defect.field
        if defect.kind == "wrong_check_char":
            text[name][row] = with_wrong_check_char(str(text[name][row]), int(rng.integers(1, 11)))
        elif defect.kind == "legacy_15_digit":
            text[name][row] = legacy_form(str(text[name][row]))
        elif defect.kind == "fullwidth_digits":
            text[name][row] = fullwidth_form(str(text[name][row]))
        elif defect.kind == "missing_required":
            text[name][row] = None
            continue
        elif defect.kind == "date_order":
            # The later date of the pair moves before the earlier one ("expires before issued").
            earlier = dates[earlier_of[name]][row]
            dates[name][row] = earlier - np.timedelta64(int(rng.integers(1, 366)), "D")
            continue
        elif defect.kind == "duplicate_license_no":
            if defect.copy_of is not None:
                text[name][row] = text[name][defect.copy_of]
                if watermark is not None:
                    watermark[row] = watermark[defect.copy_of]
            continue
        variants.append(str(text[name][row]))
    return variants

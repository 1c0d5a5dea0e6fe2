"""Field checks shared by Vietnam's unsigned codes (PC-Covid personal QR, CCCD chip ID card QR).

Both carry the citizen's ID number, so both give the same identity,
``vn-id:<12 digits>``: one person showing their PC-Covid code today and their
ID card tomorrow is one visitor to the duplicate window.

Identity is normalised before it is pseudonymised: the payload is put in
Unicode NFKC (full-width digits and letters become ASCII, composed and
decomposed Vietnamese become one form), then every numeric field must be
ASCII digits. A number in other digits (Arabic-Indic, Devanagari...) is
``malformed``: NFKC does not map them, and accepting them would give one
citizen a second pseudonym.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# The 12-digit personal ID (CCCD): province (001-096), gender/century digit, year of birth (2 digits), 6 digits.
CCCD_RE = re.compile(r"^(0[0-9][0-9])([0-9])([0-9][0-9])[0-9]{6}$")
CMND_RE = re.compile(r"^[0-9]{9}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def norm(text: str) -> str:
    """NFKC form: QR texts come in composed and decomposed Vietnamese, and scanners or
    apps may hand over full-width forms; NFKC is also NFC for Vietnamese letters."""
    return unicodedata.normalize("NFKC", text)


def valid_name(name: str) -> bool:
    """A person's name: letters (Vietnamese or ASCII) in words separated by single spaces."""
    if not 1 <= len(name) <= 100 or name != name.strip() or "  " in name:
        return False
    return all(c.isalpha() or c in " '-." for c in name) and any(c.isalpha() for c in name)


def cccd_problem(number: str, birth: date | None = None, sex_male: bool | None = None) -> str | None:
    """Why a 12-digit citizen ID is impossible (None if it is fine); cross-checked against the
    birth date and sex when given: digit 4 codes sex and century, digits 5-6 the birth year."""
    m = CCCD_RE.match(number)
    if not m:
        return "citizen ID must be 12 digits"
    province, code, yy = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1 <= province <= 96:
        return f"citizen ID province code {m.group(1)} does not exist"
    century = 1900 + 100 * (code // 2)
    if birth is not None:
        if birth.year != century + yy:
            return "citizen ID does not match the birth year"
    if sex_male is not None and (code % 2 == 0) != sex_male:
        return "citizen ID does not match the sex"
    return None


def parse_date(text: str, fmt: str) -> date | None:
    """``ddmmyyyy`` / ``dd/mm/yyyy`` / ``yyyy-mm-dd`` (``fmt``: dmy, dmy/, ymd-) to a date; None if impossible."""
    try:
        if fmt == "dmy" and re.fullmatch(r"[0-9]{8}", text):
            return date(int(text[4:]), int(text[2:4]), int(text[:2]))
        if fmt == "dmy/" and re.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}", text):
            return date(int(text[6:]), int(text[3:5]), int(text[:2]))
        if fmt == "ymd-" and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return date(int(text[:4]), int(text[5:7]), int(text[8:]))
    except ValueError:
        return None
    return None


def plausible_birth(d: date, today: date) -> bool:
    return 1900 <= d.year and d <= today


def has_control(text: str) -> bool:
    return bool(_CONTROL.search(text))

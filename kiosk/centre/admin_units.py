"""A province's administrative units (districts and wards), read from its CSV.

``kiosk centre user add --district`` checks a district exists against them; the simulated city
(``kiosk simulate``) spreads its venues over them. The CSVs are never part of the package
(:func:`admin_csv` says where they are looked for).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from kiosk.errors import KioskValueError

ADMIN_ENV = "KIOSK_ADMIN_DATA"
DEFAULT_PROVINCE = "hanoi"
# The project's shared test data beside the checkout (never copied into the repository).
CHECKOUT_ADMIN = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "admin"


class AdminDataError(KioskValueError):
    """The administrative units (districts and wards) cannot be found or read."""


def admin_csv(admin: str | Path | None = None, province: str = DEFAULT_PROVINCE) -> Path:
    """The CSV of ``province``'s districts and wards.

    ``admin`` is a directory of ``{province}.csv`` files (or one such CSV); when not given, the
    directory in ``$KIOSK_ADMIN_DATA``, else ``../shared/testdata/admin`` beside the checkout.
    """
    if admin:
        where = Path(admin)
    elif os.environ.get(ADMIN_ENV):
        where = Path(os.environ[ADMIN_ENV])
    elif CHECKOUT_ADMIN.is_dir():
        where = CHECKOUT_ADMIN
    else:
        raise AdminDataError(f"no administrative units: give --admin DIR (the directory holding "
                             f"{province}.csv) or set {ADMIN_ENV}")
    path = where if where.suffix == ".csv" else where / f"{province}.csv"
    if not path.is_file():
        raise AdminDataError(f"{path}: no such administrative units CSV")
    return path


def admin_units(admin: str | Path | None = None, province: str = DEFAULT_PROVINCE) -> list[dict]:
    """The districts and wards of ``province`` (see :func:`admin_csv`), one dict per ward."""
    path = admin_csv(admin, province)
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AdminDataError(f"{path}: cannot read ({exc})") from None
    need = {"province", "province_code", "district", "district_code", "ward", "ward_code"}
    if not rows or not need <= set(rows[0]):
        raise AdminDataError(f"{path}: not an administrative units CSV (needs columns {', '.join(sorted(need))})")
    return rows

"""The two registries the centre is provisioned with, and believes.

* The **fleet registry** (JSON, written by ``kiosk fleet``; BRIEF contract 2): every kiosk's
  site, device, venue and Ed25519 public key. A kiosk message counts only when it verifies
  with its own row's key; a revoked row (lost kiosk) counts for nothing; key rotation is a
  second row for the same kiosk with a new kid.
* The **venue registry** (CSV): every venue that created a QR code, kiosk or not (most venues
  only print a poster), with where it is. "Venues with a code" counts these rows.

Both are operator files: a bad one is one line naming the file (and row), never a traceback.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.wire import registry
from kiosk.wire.registry import RegistryError
from kiosk.wire.signing import KeyRing, TrustedKey


@dataclass(frozen=True)
class RegisteredKiosk:
    site: str
    device: str
    venue_id: str
    kid: str
    revoked: bool = False

    @property
    def owner(self) -> str:
        return f"{self.site}/{self.device}"


@dataclass
class FleetRegistry:
    """Kiosks by ``site/device`` and the key ring of their (not revoked) keys."""

    kiosks: dict[str, RegisteredKiosk] = field(default_factory=dict)  # owner -> newest row
    keys: KeyRing = field(default_factory=KeyRing)
    revoked_kids: frozenset[str] = frozenset()
    source: str = ""

    def kiosk(self, site: str, device: str) -> RegisteredKiosk | None:
        return self.kiosks.get(f"{site}/{device}")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FleetRegistry":
        return cls.of(registry.load(path), str(path))

    @classmethod
    def from_json(cls, data, source: str = "fleet registry") -> "FleetRegistry":
        return cls.of(registry.parse(data, source), source)

    @classmethod
    def of(cls, entries: list[registry.Entry], source: str = "") -> "FleetRegistry":
        """The registry's rows (parsed by :mod:`kiosk.wire.registry`) by kiosk, with the key ring of active keys."""
        kiosks: dict[str, RegisteredKiosk] = {}
        keys: list[TrustedKey] = []
        revoked: set[str] = set()
        for e in entries:
            k = RegisteredKiosk(e.site, e.device, e.venue_id, e.kid, e.revoked)
            if k.revoked:
                revoked.add(k.kid)
                kiosks.setdefault(k.owner, k)
                continue
            keys.append(TrustedKey(k.kid, k.owner, e.key))
            kiosks[k.owner] = k  # a later row (rotated key) wins for the venue id
        # A kiosk with every key revoked stays listed (its messages are refused as "revoked").
        return cls(kiosks, KeyRing(keys), frozenset(revoked), source)


VENUE_COLUMNS = ("venue_id", "name", "address", "province", "district", "ward", "province_code", "district_code",
                 "ward_code", "venue_qr_sha256")


@dataclass(frozen=True)
class Venue:
    venue_id: str
    name: str = ""
    address: str = ""
    province: str = ""
    district: str = ""
    ward: str = ""
    province_code: str = ""
    district_code: str = ""
    ward_code: str = ""
    venue_qr_sha256: str = ""

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in VENUE_COLUMNS)


def read_venues(path: str | os.PathLike) -> list[Venue]:
    """The venue registry CSV: a header with at least ``venue_id``, ``name`` and ``district``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read the venue registry ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise RegistryError(f"{p}: not UTF-8 text") from None
    return parse_venues(text, str(p))


def parse_venues(text: str, source: str = "venues.csv") -> list[Venue]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("venue_id", "name", "district") if c not in header]
    if missing:
        raise RegistryError(f"{source}: missing column(s) {', '.join(missing)} (columns: {', '.join(VENUE_COLUMNS)})")
    out: dict[str, Venue] = {}
    for line, row in enumerate(reader, 2):
        vid = (row.get("venue_id") or "").strip()
        if not vid:
            raise RegistryError(f"{source}:{line}: venue_id is empty")
        if vid in out:
            raise RegistryError(f"{source}:{line}: venue_id {vid!r} appears twice")
        qr = (row.get("venue_qr_sha256") or "").strip().lower()
        if qr and (len(qr) != 64 or any(c not in "0123456789abcdef" for c in qr)):
            raise RegistryError(f"{source}:{line}: venue_qr_sha256 is not 64 hex digits")
        out[vid] = Venue(vid, **{c: (row.get(c) or "").strip() for c in VENUE_COLUMNS[1:-1]}, venue_qr_sha256=qr)
    return list(out.values())


def write_venues(path: str | os.PathLike, venues) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(VENUE_COLUMNS)
        for v in venues:
            w.writerow(v.row())
    return p

"""Signed EU DCCs for tests and the demo: never for real certificates.

``issue_dcc`` signs an hcert payload (given, or built from a kind and the
holder's names) with an :class:`kiosk.issuing.keys.IssuerKey`, e.g. the DEMO
document signer in ``config/demo-keys/``. A tool: the firmware reads DCCs
(:mod:`kiosk.door.verify.dcc`) and never imports this module.
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import datetime, timedelta, timezone
from collections.abc import Mapping

import cbor2

from kiosk.door.verify import base45
from kiosk.issuing import cose
from kiosk.door.verify.dcc import CLAIM_EXP, CLAIM_HCERT, CLAIM_IAT, CLAIM_ISS, PREFIX, name_key
from kiosk.issuing.keys import IssuerKey


def issue_dcc(key, certificate=None, *, kind: str = "vaccination", family: str = "", given: str = "",
              dob: str = "", at: datetime | None = None, last_dose: datetime | None = None, dn: int = 2, sd: int = 2,
              sample_time: datetime | None = None, negative: bool = True, first_positive: datetime | None = None,
              dcc: Mapping | None = None, issued_at: datetime | None = None, expires_at: datetime | None = None,
              valid_days: int = 365, country: str = "VN", uvci: str | None = None,
              claims: Mapping | None = None) -> str:
    """A signed ``HC1:`` payload, for tests and the demo.

    ``key`` is an :class:`kiosk.issuing.keys.IssuerKey` or the path of its key file
    (``certificate``: the certificate's path when the key file holds none). Give
    the hcert payload as ``dcc``, or let it be built from ``kind`` (vaccination,
    test, recovery), the holder's names and ``dob``: a vaccination with dose
    ``dn``/``sd`` on ``last_dose``, a test sampled at ``sample_time``, or a
    recovery from ``first_positive``. Issued at ``at`` (default now), expiring
    ``valid_days`` later. ``claims`` adds or replaces CWT claims (tests of hostile values).
    """
    if not isinstance(key, IssuerKey):
        key = IssuerKey.load(key, certificate)
    at = at or datetime.now(timezone.utc)
    if dcc is None:
        if uvci is None:
            digest = hashlib.sha256(f"{kind}|{family}|{given}|{dob}".encode()).hexdigest()[:24].upper()
            uvci = f"URN:UVCI:01:{country}:{digest}"
        if kind == "vaccination":
            dose = (last_dose or at - timedelta(days=30)).date().isoformat()
            dcc = vaccination(family, given, dob, dose_date=dose, dn=dn, sd=sd, country=country, uvci=uvci)
        elif kind == "test":
            t = (sample_time or at - timedelta(hours=3)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            dcc = test_result(family, given, dob, sample_time=t, negative=negative, country=country, uvci=uvci)
        elif kind == "recovery":
            fp = (first_positive or at - timedelta(days=30)).date()
            dcc = recovery(family, given, dob, first_positive=fp.isoformat(),
                           valid_from=(fp + timedelta(days=11)).isoformat(),
                           valid_until=(fp + timedelta(days=180)).isoformat(), country=country, uvci=uvci)
        else:
            raise ValueError(f"kind must be vaccination, test or recovery, not {kind!r}")
    issued_at = issued_at or at
    expires_at = expires_at or issued_at + timedelta(days=valid_days)
    claims = {CLAIM_ISS: country, CLAIM_IAT: int(issued_at.timestamp()), CLAIM_EXP: int(expires_at.timestamp()),
              CLAIM_HCERT: {1: dict(dcc)}, **(claims or {})}
    signed = cose.sign1(cbor2.dumps(claims), key.private_key, key.alg, key.kid)
    return PREFIX + base45.encode(zlib.compress(signed, 9))


def _nam(family: str, given: str) -> dict:
    return {"fn": family, "fnt": name_key(family), "gn": given, "gnt": name_key(given)}


def vaccination(family: str, given: str, dob: str, *, dose_date: str, dn: int = 2, sd: int = 2,
                country: str = "VN", uvci: str = "URN:UVCI:01:VN:DEMO0000000000000001",
                product: str = "EU/1/20/1528", manufacturer: str = "ORG-100030215",
                issuer: str = "Ministry of Health (demo)") -> dict:
    """A vaccination DCC payload (schema v1.3.0)."""
    return {"ver": "1.3.0", "nam": _nam(family, given), "dob": dob,
            "v": [{"tg": "840539006", "vp": "1119349007", "mp": product, "ma": manufacturer, "dn": dn, "sd": sd,
                   "dt": dose_date, "co": country, "is": issuer, "ci": uvci}]}


def test_result(family: str, given: str, dob: str, *, sample_time: str, negative: bool = True, country: str = "VN",
                uvci: str = "URN:UVCI:01:VN:DEMO0000000000000002", issuer: str = "Ministry of Health (demo)") -> dict:
    """A test DCC payload (RT-PCR); ``sample_time`` is ISO 8601 with zone, e.g. 2021-11-20T08:00:00Z."""
    return {"ver": "1.3.0", "nam": _nam(family, given), "dob": dob,
            "t": [{"tg": "840539006", "tt": "LP6464-4", "sc": sample_time,
                   "tr": "260415000" if negative else "260373001", "tc": "Demo test centre", "co": country,
                   "is": issuer, "ci": uvci}]}


test_result.__test__ = False  # not a pytest test, whatever its name


def recovery(family: str, given: str, dob: str, *, first_positive: str, valid_from: str, valid_until: str,
             country: str = "VN", uvci: str = "URN:UVCI:01:VN:DEMO0000000000000003",
             issuer: str = "Ministry of Health (demo)") -> dict:
    """A recovery DCC payload."""
    return {"ver": "1.3.0", "nam": _nam(family, given), "dob": dob,
            "r": [{"tg": "840539006", "fr": first_positive, "co": country, "is": issuer, "df": valid_from,
                   "du": valid_until, "ci": uvci}]}

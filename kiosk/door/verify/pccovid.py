"""PC-Covid personal QR (Decision 1405/QĐ-BTTTT): ``SoGiayTo|HoTen|NgaySinh|LoaiDinhDanh|QID|EXT``.

It carries no signature a kiosk can check offline, so the plug-in checks the
format strictly and reports ``valid`` with ``signed=False``: the guard sees
that only the format was checked, and the venue policy decides whether
unsigned codes are accepted (``accept_unsigned``).

Fields (masking by the app: the first 6 characters of the document number, and
day and month of birth, may be shown as ``*``):

- SoGiayTo: citizen ID (12 digits), old ID (9 digits) or passport number
- HoTen: full name (the app writes it in capitals without diacritics; both are accepted)
- NgaySinh: ``YYYY-MM-DD`` (masked ``YYYY-**-**``), also ``DD/MM/YYYY`` or ``YYYY``
- LoaiDinhDanh: ``0`` self-declared, ``1`` declared by a proxy; the document
  kinds ``CCCD``, ``CMND``, ``HC`` (passport) are accepted too and cross-checked
- QID: the national QR platform's id
- EXT: ``<``-separated, in this order, each may be empty: health-insurance
  number, phone, sex (0 unknown, 1 male, 2 female), signature, proxy's QID
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from kiosk.wire import reasons
from kiosk.door.verify import vnid
from kiosk.door.verify.base import CodeCheck, Holder, VerifyContext

_DOC = re.compile(r"^([0-9]{9}|[0-9]{12}|\*{6}[0-9]{3}|\*{6}[0-9]{6}|[A-Z][A-Z0-9]{5,11}|\*{6}[A-Z0-9]{2,8})$")
_QID = re.compile(r"^[A-Za-z0-9_.:-]{4,64}$")
_BHYT = re.compile(r"^([0-9*]{10}|[A-Z]{2}[0-9*]{13})$")
_PHONE = re.compile(r"^(0|\+84)[0-9*]{9,10}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9+/=_-]{1,1024}$")
KINDS = {"0": None, "1": None, "CCCD": "cccd", "CMND": "cmnd", "HC": "passport"}
SEX = {"": None, "0": None, "1": "male", "2": "female"}


class PcCovid:
    """The ``pc-covid`` plug-in."""

    name = "pc-covid"

    def detects(self, payload: str) -> bool:
        return payload.count("|") == 5

    def check(self, payload: str, ctx: VerifyContext) -> CodeCheck:
        try:
            f = self._parse(vnid.norm(payload), ctx)
        except ValueError as exc:
            return CodeCheck.reject(self.name, reasons.MALFORMED, str(exc))
        doc = f["document"]
        if re.fullmatch(r"[0-9]{12}", doc):
            identity = f"vn-id:{doc}"
        elif re.fullmatch(r"[0-9]{9}", doc):
            identity = f"vn-cmnd:{doc}"
        elif "*" not in doc:
            identity = f"passport:{doc}"
        else:  # masked number: the platform's QID is the stable key
            identity = f"pc-covid:{f['qid']}"
        return CodeCheck(
            format=self.name, valid=True, reason=reasons.OK, signed=False, identity=identity,
            holder=Holder(name=f["name"], birth_date=f["birth_date"], id_number=doc if "*" not in doc else None,
                          phone=f["phone"]),
            facts={"self_declared": f["kind"] != "1", "sex": f["sex"], "masked": "*" in doc},
            detail="unsigned: only the format of the PC-Covid QR was checked",
        )

    def _parse(self, text: str, ctx: VerifyContext) -> dict:
        parts = text.split("|")
        if len(parts) != 6:
            raise ValueError("a PC-Covid code has 6 fields")
        if any(vnid.has_control(p) for p in parts):
            raise ValueError("control characters in a field")
        doc, name, dob_s, kind, qid, ext = parts
        if not _DOC.match(doc):
            raise ValueError("document number is not a citizen ID, old ID or passport number")
        if not vnid.valid_name(name):
            raise ValueError("full name is not a name")
        today = (ctx.now + timedelta(seconds=ctx.clock_skew_seconds)).date()
        birth = self._birth(dob_s, today)
        if kind not in KINDS:
            raise ValueError("identification type must be 0, 1, CCCD, CMND or HC")
        expect = KINDS[kind]
        if expect == "cccd" and not re.fullmatch(r"[0-9*]{12}", doc) or expect == "cmnd" and not re.fullmatch(r"[0-9*]{9}", doc):
            raise ValueError(f"document number does not fit the type {kind}")
        if re.fullmatch(r"[0-9]{12}", doc):
            full = birth if isinstance(birth, date) else None
            problem = vnid.cccd_problem(doc, full)
            if problem:
                raise ValueError(problem)
        if not _QID.match(qid):
            raise ValueError("QID missing or not a platform id")
        ext_parts = ext.split("<") if ext else []
        if len(ext_parts) > 5:
            raise ValueError("EXT has more than 5 fields")
        ext_parts += [""] * (5 - len(ext_parts))
        bhyt, phone, sex, signature, proxy = ext_parts
        for value, pattern, label in ((bhyt, _BHYT, "health-insurance number"), (phone, _PHONE, "phone number"),
                                      (signature, _SIGNATURE, "signature field"), (proxy, _QID, "proxy QID")):
            if value and not pattern.match(value):
                raise ValueError(f"EXT {label} is malformed")
        if sex not in SEX:
            raise ValueError("EXT sex must be 0, 1 or 2")
        return {"document": doc, "name": name, "birth_date": birth.isoformat() if isinstance(birth, date) else birth,
                "kind": kind, "qid": qid, "sex": SEX[sex],
                # A masked phone number (``*``) identifies nobody: kept only when whole.
                "phone": phone if phone and "*" not in phone else None}

    @staticmethod
    def _birth(text: str, today: date):
        """A full date, or the year alone (text) when day and month are masked or absent."""
        d = vnid.parse_date(text, "ymd-") or vnid.parse_date(text, "dmy/")
        if d is not None:
            if not vnid.plausible_birth(d, today):
                raise ValueError("date of birth is not plausible")
            return d
        m = re.fullmatch(r"([0-9]{4})(-\*\*-\*\*)?", text) or re.fullmatch(r"\*\*/\*\*/([0-9]{4})", text)
        if m and 1900 <= int(m.group(1)) <= today.year:
            return m.group(1)
        raise ValueError("date of birth must be YYYY-MM-DD (day and month may be masked)")

"""CCCD: the QR code on Vietnam's chip citizen ID card, an identity-only check-in.

``ID|old ID|full name|date of birth ddmmyyyy|sex|address|issue date ddmmyyyy``,
e.g. ``001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021``.
The card's QR is not signed: every field is checked strictly (including the
ID number's sex/century/birth-year digits against the other fields), and the
result is ``valid`` with ``signed=False``; the venue policy decides whether
unsigned codes are accepted.
"""

from __future__ import annotations

from datetime import timedelta

from kiosk.wire import reasons
from kiosk.door.verify import vnid
from kiosk.door.verify.base import CodeCheck, Holder, VerifyContext

SEXES = {"nam": True, "nữ": False, "nu": False}


class Cccd:
    """The ``cccd`` plug-in."""

    name = "cccd"

    def detects(self, payload: str) -> bool:
        return payload.count("|") == 6 and payload[:1].isdigit()

    def check(self, payload: str, ctx: VerifyContext) -> CodeCheck:
        problem, fields = self._parse(vnid.norm(payload), ctx)
        if problem:
            return CodeCheck.reject(self.name, reasons.MALFORMED, problem)
        number, old, name, dob, sex, issued = fields
        return CodeCheck(
            format=self.name, valid=True, reason=reasons.OK, signed=False,
            identity=f"vn-id:{number}",
            holder=Holder(name=name, birth_date=dob.isoformat(), id_number=number),
            facts={"sex": "male" if sex else "female", "issued_on": issued.isoformat(), "old_id": bool(old)},
            detail="unsigned: only the format of the ID card QR was checked",
        )

    def _parse(self, text: str, ctx: VerifyContext):
        parts = text.split("|")
        if len(parts) != 7:
            return "a CCCD code has 7 fields", None
        number, old, name, dob_s, sex_s, address, issued_s = parts
        if any(vnid.has_control(p) for p in parts):
            return "control characters in a field", None
        if old and not vnid.CMND_RE.match(old):
            return "old ID must be 9 digits or empty", None
        if not vnid.valid_name(name):
            return "full name is not a name", None
        dob = vnid.parse_date(dob_s, "dmy")
        today = (ctx.now + timedelta(seconds=ctx.clock_skew_seconds)).date()
        if dob is None or not vnid.plausible_birth(dob, today):
            return "date of birth must be a real date ddmmyyyy", None
        sex = SEXES.get(sex_s.lower())
        if sex is None:
            return "sex must be Nam or Nữ", None
        problem = vnid.cccd_problem(number, dob, sex)
        if problem:
            return problem, None
        if not 1 <= len(address.strip()) <= 250:
            return "address missing or too long", None
        issued = vnid.parse_date(issued_s, "dmy")
        if issued is None or issued < dob or issued > today:
            return "issue date must be a real date ddmmyyyy between birth and today", None
        return None, (number, old, name, dob, sex, issued)

"""The visitor's words for each verdict reason (:mod:`kiosk.wire.reasons`), in Vietnamese and English.

Each reason has plain words for the verdict screen and a next step (:func:`next_step`):
what the visitor can do about it. Reasons only the guard can resolve say "please see
the guard".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Mapping

from kiosk.wire import reasons

# (Vietnamese, English) plain words for the verdict screen.
_WORDS: dict[str, tuple[str, str]] = {
    reasons.OK: ("Hợp lệ", "Valid"),
    reasons.MALFORMED: ("Mã không đọc được", "Unreadable code"),
    reasons.UNKNOWN_FORMAT: ("Mã không được hỗ trợ", "Unsupported code"),
    reasons.UNKNOWN_KEY: ("Không rõ nơi cấp", "Unknown issuer"),
    reasons.SIGNATURE_INVALID: ("Chữ ký không hợp lệ", "Invalid signature"),
    reasons.EXPIRED: ("Hết hạn", "Expired"),
    reasons.NOT_YET_VALID: ("Chưa có hiệu lực", "Not yet valid"),
    reasons.KEY_USAGE: ("Nơi cấp không được phép", "Issuer not allowed for this type"),
    reasons.SCHEMA: ("Nội dung không hợp lệ", "Invalid content"),
    reasons.UNSIGNED: ("Mã không có chữ ký", "Unsigned code"),
    reasons.REVOKED: ("Đã bị thu hồi", "Revoked"),
    reasons.DUPLICATE: ("Đã quét", "Already checked in"),
    reasons.OVERRIDE: ("Bảo vệ cho phép", "Allowed by guard"),
    reasons.TRUST_STALE: ("Dữ liệu xác thực đã cũ, gặp bảo vệ", "Trust data out of date: see the guard"),
}

_POLICY_WORDS: dict[str, tuple[str, str]] = {
    "format": ("Loại mã không được chấp nhận", "Code type not accepted here"),
    "status": ("Tình trạng sức khỏe không đạt", "Health status not accepted"),
    "vaccination-incomplete": ("Chưa tiêm đủ liều", "Vaccination incomplete"),
    "vaccination-too-recent": ("Mũi tiêm quá gần", "Last dose too recent"),
    "vaccination-too-old": ("Mũi tiêm đã quá lâu", "Last dose too long ago"),
    "test-positive": ("Xét nghiệm dương tính", "Positive test"),
    "test-too-old": ("Xét nghiệm đã quá hạn", "Test too old"),
    "test-in-future": ("Thời gian lấy mẫu không hợp lệ", "Test sample time in the future"),
    "recovery-window": ("Ngoài thời hạn khỏi bệnh", "Outside recovery window"),
    "certificate-type": ("Loại chứng nhận không được chấp nhận", "Certificate type not accepted"),
}


def words(reason: str, language: str = "vi") -> str:
    """Plain words for a reason, in ``vi`` or ``en``; falls back to the code itself."""
    if reason.startswith(reasons.POLICY_PREFIX):
        pair = _POLICY_WORDS.get(reason[len(reasons.POLICY_PREFIX):], ("Không đạt quy định", "Not allowed by venue policy"))
    else:
        pair = _WORDS.get(reason)
        if pair is None:
            return reason
    return pair[0] if language == "vi" else pair[1]


# What a turned-away visitor can do, per reason (Vietnamese, English). Short: the screen shows
# them large enough to read from 2 m (docs/screen.md). "{date}" is the certificate's end of validity.
SEE_GUARD = ("Xin gặp bảo vệ", "Please see the guard")
SHOW_PC_COVID = ("Hãy đưa mã PC-Covid của bạn", "Show your PC-Covid code")
_NEXT_STEPS: dict[str, tuple[str, str]] = {
    reasons.MALFORMED: ("Đưa lại mã, giữ yên", "Show it again, hold it still"),
    # A venue code, a web link, a product barcode: the visitor showed the wrong code.
    reasons.UNKNOWN_FORMAT: ("Không phải mã sức khỏe. Hãy đưa mã PC-Covid", "Not a health code. Show your PC-Covid code"),
    reasons.UNSIGNED: SHOW_PC_COVID,
    reasons.EXPIRED: ("Hãy đưa mã còn hạn", "Show a code that is still valid"),
}
_EXPIRED_ON = ("Hết hạn ngày {date}", "Expired on {date}")
_POLICY_NEXT_STEPS: dict[str, tuple[str, str]] = {
    "format": SHOW_PC_COVID,
}


def expired_on(facts: Mapping[str, object] | None) -> date | None:
    """The day a code stopped being valid, from a check's facts where the format says it.

    Health declarations carry ``valid_until``, EU DCCs ``expires_at`` (ISO 8601);
    the day is the kiosk's local date of that moment.
    """
    if not facts:
        return None
    for key in ("valid_until", "expires_at"):
        value = facts.get(key)
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        else:
            continue
        return (moment.astimezone() if moment.tzinfo else moment).date()
    return None


def next_step(reason: str, language: str = "vi", facts: Mapping[str, object] | None = None) -> str:
    """What a visitor turned away for ``reason`` can do, in ``vi`` or ``en``.

    ``facts`` (a check's facts, where the check-in carries them) name the
    expiry date of an expired certificate. Reasons only the guard can resolve
    (a forged or revoked code, a venue rule) say "please see the guard".
    """
    pair = None
    if reason == reasons.EXPIRED:
        day = expired_on(facts)
        if day is not None:
            text = _EXPIRED_ON[0 if language == "vi" else 1]
            return text.format(date=day.strftime("%d/%m/%Y"))
    if reason.startswith(reasons.POLICY_PREFIX):
        pair = _POLICY_NEXT_STEPS.get(reason[len(reasons.POLICY_PREFIX):])
    else:
        pair = _NEXT_STEPS.get(reason)
    pair = pair or SEE_GUARD
    return pair[0] if language == "vi" else pair[1]

"""Stable reason codes: the words the ledger, MQTT, `kiosk verify` and the screen share.

A reason code never changes once published (monitoring dashboards count by it).
Each has plain words for the visitor's screen in Vietnamese and English, and a
next step (:func:`next_step`): what the visitor can do about it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Mapping

OK = "ok"
MALFORMED = "malformed"
UNKNOWN_FORMAT = "unknown-format"
UNKNOWN_KEY = "unknown-key"
SIGNATURE_INVALID = "signature-invalid"
EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
KEY_USAGE = "key-usage"
SCHEMA = "schema"
UNSIGNED = "unsigned"
REVOKED = "revoked"
DUPLICATE = "duplicate"
OVERRIDE = "override"
TRUST_STALE = "trust-stale"
POLICY_PREFIX = "policy:"

# (Vietnamese, English) plain words for the verdict screen.
_WORDS: dict[str, tuple[str, str]] = {
    OK: ("Hợp lệ", "Valid"),
    MALFORMED: ("Mã không đọc được", "Unreadable code"),
    UNKNOWN_FORMAT: ("Mã không được hỗ trợ", "Unsupported code"),
    UNKNOWN_KEY: ("Không rõ nơi cấp", "Unknown issuer"),
    SIGNATURE_INVALID: ("Chữ ký không hợp lệ", "Invalid signature"),
    EXPIRED: ("Hết hạn", "Expired"),
    NOT_YET_VALID: ("Chưa có hiệu lực", "Not yet valid"),
    KEY_USAGE: ("Nơi cấp không được phép", "Issuer not allowed for this type"),
    SCHEMA: ("Nội dung không hợp lệ", "Invalid content"),
    UNSIGNED: ("Mã không có chữ ký", "Unsigned code"),
    REVOKED: ("Đã bị thu hồi", "Revoked"),
    DUPLICATE: ("Đã quét", "Already checked in"),
    OVERRIDE: ("Bảo vệ cho phép", "Allowed by guard"),
    TRUST_STALE: ("Dữ liệu xác thực đã cũ, gặp bảo vệ", "Trust data out of date: see the guard"),
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


def is_known(reason: str) -> bool:
    """True for a reason code this version can name in plain words."""
    if reason.startswith(POLICY_PREFIX):
        return True
    return reason in _WORDS


def policy(rule: str) -> str:
    """The reason code for a venue-policy rule, e.g. ``policy:test-too-old``."""
    return POLICY_PREFIX + rule


def words(reason: str, language: str = "vi") -> str:
    """Plain words for a reason, in ``vi`` or ``en``; falls back to the code itself."""
    if reason.startswith(POLICY_PREFIX):
        pair = _POLICY_WORDS.get(reason[len(POLICY_PREFIX):], ("Không đạt quy định", "Not allowed by venue policy"))
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
    MALFORMED: ("Đưa lại mã, giữ yên", "Show it again, hold it still"),
    # A venue code, a web link, a product barcode: the visitor showed the wrong code.
    UNKNOWN_FORMAT: ("Không phải mã sức khỏe. Hãy đưa mã PC-Covid", "Not a health code. Show your PC-Covid code"),
    UNSIGNED: SHOW_PC_COVID,
    EXPIRED: ("Hãy đưa mã còn hạn", "Show a code that is still valid"),
}
_EXPIRED_ON = ("Hết hạn ngày {date}", "Expired on {date}")
_POLICY_NEXT_STEPS: dict[str, tuple[str, str]] = {
    "format": SHOW_PC_COVID,
}


def expired_on(facts: Mapping[str, Any] | None) -> date | None:
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


def next_step(reason: str, language: str = "vi", facts: Mapping[str, Any] | None = None) -> str:
    """What a visitor turned away for ``reason`` can do, in ``vi`` or ``en``.

    ``facts`` (a check's facts, where the check-in carries them) name the
    expiry date of an expired certificate. Reasons only the guard can resolve
    (a forged or revoked code, a venue rule) say "please see the guard".
    """
    pair = None
    if reason == EXPIRED:
        day = expired_on(facts)
        if day is not None:
            text = _EXPIRED_ON[0 if language == "vi" else 1]
            return text.format(date=day.strftime("%d/%m/%Y"))
    if reason.startswith(POLICY_PREFIX):
        pair = _POLICY_NEXT_STEPS.get(reason[len(POLICY_PREFIX):])
    else:
        pair = _NEXT_STEPS.get(reason)
    pair = pair or SEE_GUARD
    return pair[0] if language == "vi" else pair[1]

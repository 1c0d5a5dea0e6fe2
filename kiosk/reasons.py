"""Stable reason codes: the words the ledger, MQTT, `kiosk verify` and the screen share.

A reason code never changes once published (monitoring dashboards count by it).
Each has plain words for the visitor's screen in Vietnamese and English.
"""

from __future__ import annotations

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

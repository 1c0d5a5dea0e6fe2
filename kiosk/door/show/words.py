"""What each screen says, in Vietnamese and English: verdict words, next steps, the guard's words.

No drawing here (no pygame): :mod:`kiosk.door.show.draw` lays these words out.
A verdict screen is a list of :class:`Block` s, most important first:

* ``headline``: the decision, read from 2 m (may I go in?);
* ``step``: what to do now (come in, show your PC-Covid code, see the guard),
  also read from 2 m;
* ``detail``: the reason in plain words, for whoever stands at the kiosk;
* ``name``: the visitor's masked name ("is this my code?").

See docs/screen.md for the legibility criterion the sizes are measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from kiosk.wire import reasons
from kiosk.door.show import reason_text

if TYPE_CHECKING:
    from kiosk.door.decide.checkin import Checkin

# Verdict looks: which colour/shape/words a check-in gets (kiosk.door.show.draw.LOOKS).
ACCEPT, OVERRIDE, REJECT, DUPLICATE, UNVERIFIED, OUT_OF_SERVICE = (
    "accept", "override", "reject", "duplicate", "unverified", "out-of-service")


@dataclass(frozen=True)
class Block:
    """One block of a verdict screen: the same words in each language shown (Vietnamese first)."""

    role: str  # headline | step | detail | name
    lines: tuple[str, ...]


def in_language(vi: str, en: str, language: str) -> list[str]:
    """The lines to show for ``[venue] language``: vi, en, or both (Vietnamese first)."""
    if language == "vi":
        return [vi]
    if language == "en":
        return [en]
    return [vi, en] if vi != en else [vi]


def say(vi: str, en: str, language: str, sep: str = " / ") -> str:
    """One line for ``language``; both languages joined by ``sep`` in ``vi+en``."""
    return sep.join(in_language(vi, en, language))


HEADLINES: dict[str, tuple[str, str]] = {
    ACCEPT: ("Mời vào", "Welcome"),
    OVERRIDE: ("Mời vào", "Welcome"),
    DUPLICATE: ("Mời vào", "Come in"),
    REJECT: ("Không được vào", "Not admitted"),
    UNVERIFIED: ("Chưa xác minh", "Not verified"),
    OUT_OF_SERVICE: ("Tạm ngừng phục vụ", "Out of service"),
}

# Short words for the guard's list of recent verdicts.
VERDICT_WORDS: dict[str, tuple[str, str]] = {
    ACCEPT: ("Vào", "In"),
    OVERRIDE: ("Bảo vệ cho vào", "Guard let in"),
    DUPLICATE: ("Đã quét", "Again"),
    REJECT: ("Từ chối", "Refused"),
    UNVERIFIED: ("Kiểm tra CCCD", "Check ID"),
    OUT_OF_SERVICE: ("Ngừng", "Out of service"),
}

CHECK_ID_CARD = ("Xin đưa CCCD cho bảo vệ", "Show your ID card to the guard")
NOT_VERIFIED_DETAIL = ("Bảo vệ: kiểm tra CCCD", "Guard: check the ID card")
ALREADY_IN = ("Đã quét rồi", "Already checked in")  # and counted once: the ledger never counts twice
OUT_OF_SERVICE_DETAIL = ("Máy không ghi được lượt quét", "This kiosk cannot record check-ins")

# The guard's health words (the health contract's `degraded` list) in plain words.
DEGRADED_WORDS: dict[str, tuple[str, str]] = {
    "ledger-down": ("Sổ ghi lỗi", "Ledger down"),
    "camera-down": ("Camera lỗi", "Camera down"),
    "display-down": ("Màn hình lỗi", "Display down"),
    "gpio-mock": ("GPIO giả lập", "GPIO simulated"),
    "trust-stale": ("Khóa đã cũ", "Trust list stale"),
    "clock-unsynced": ("Giờ chưa đồng bộ", "Clock not synced"),
}


def degraded_words(word: str, language: str) -> str:
    """A health word in plain words (an unknown word is shown as it is: the guard can still report it)."""
    pair = DEGRADED_WORDS.get(word)
    return say(*pair, language) if pair else word


def reason_words(reason: str, language: str) -> str:
    """The reason in plain words on one line (``Hết hạn / Expired``)."""
    return say(reason_text.words(reason, "vi"), reason_text.words(reason, "en"), language)


def verdict_look(checkin: Checkin | None, unsigned_opens_door: bool = False) -> str:
    """Which verdict screen a check-in gets.

    A duplicate the venue refuses is a reject (its step sends the visitor to
    the guard); an accepted code whose signature was not verified (PC-Covid,
    CCCD) keeps the door shut unless ``[policy] unsigned_opens_door`` says
    otherwise, so it gets the "not verified: check the ID card" screen:
    colour and shape always match whether the door opens.
    """
    if checkin is None or checkin.verdict != "accept":
        return REJECT
    reason = checkin.reason
    if reason == reasons.OVERRIDE:
        return OVERRIDE
    if not unsigned_opens_door and checkin.signed is False:
        return UNVERIFIED
    if checkin.duplicate or reason == reasons.DUPLICATE:
        return DUPLICATE
    return ACCEPT


def verdict_blocks(look: str, reason: str, name: str, language: str,
                   facts: Mapping[str, object] | None = None) -> list[Block]:
    """The words of one verdict screen, most important first."""
    def block(role: str, vi: str, en: str) -> Block:
        return Block(role, tuple(in_language(vi, en, language)))

    blocks = [block("headline", *HEADLINES[look])]
    if look == REJECT:
        blocks.append(block("step", reason_text.next_step(reason, "vi", facts), reason_text.next_step(reason, "en", facts)))
        if not (reason == reasons.EXPIRED and reason_text.expired_on(facts)):  # "Expired on <date>" says it all
            blocks.append(Block("detail", (reason_words(reason, language),)))
    elif look == DUPLICATE:
        blocks.append(block("step", *ALREADY_IN))
    elif look == OVERRIDE:
        blocks.append(block("step", reason_text.words(reasons.OVERRIDE, "vi"), reason_text.words(reasons.OVERRIDE, "en")))
    elif look == UNVERIFIED:
        blocks.append(block("step", *CHECK_ID_CARD))
        blocks.append(Block("detail", (say(*NOT_VERIFIED_DETAIL, language),)))
    elif look == OUT_OF_SERVICE:
        blocks.append(block("step", *reason_text.SEE_GUARD))
        blocks.append(Block("detail", (say(*OUT_OF_SERVICE_DETAIL, language),)))
    if name:
        blocks.append(Block("name", (name,)))
    return blocks

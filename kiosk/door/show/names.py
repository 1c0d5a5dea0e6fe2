"""The visitor's name as the verdict screen may show it (privacy first)."""

from __future__ import annotations

import unicodedata


def printable(text: str | None) -> str:
    """``text`` NFC-normalised without control, format, surrogate or private-use characters.

    A name comes from a visitor's code: a NUL makes pygame raise, a
    right-to-left override would turn the line around, a lone surrogate
    cannot be encoded. None of them is part of anyone's name; tabs and
    newlines become spaces.
    """
    if not text:
        return ""
    text = "".join(" " if c in "\t\n\r\v\f" else c for c in str(text))
    return "".join(c for c in unicodedata.normalize("NFC", text) if not unicodedata.category(c).startswith("C"))


def mask_name(name: str | None) -> str:
    """First word in full, the others as initials: "Nguyễn Văn An" -> "Nguyễn V. A.".

    Vietnamese names put the family name first, so the kept word is the one
    shared by most of the country: it tells the visitor "this is your code"
    without telling a queue behind them who they are. ICAO-style names from
    certificates ("NGUYEN<VAN<AN") are split on "<" as well.
    """
    words = printable(name).replace("<", " ").split()
    if not words:
        return ""
    first, rest = words[0], words[1:]
    # The initial of "đức" is "Đ": upper() keeps the Vietnamese letter whole.
    return " ".join([first] + [w[0].upper() + "." for w in rest])


def shown_name(name: str | None, mode: str = "masked") -> str:
    """The name for ``[screen] show_name``: ``masked`` (default), ``full`` or ``none``."""
    if mode == "none" or not name:
        return ""
    if mode == "full":
        return " ".join(printable(name).replace("<", " ").split())
    return mask_name(name)

"""Base45 (RFC 9285), the QR-alphanumeric-friendly encoding the EU DCC and our declarations use.

Small enough to keep here rather than add a dependency: decoding is one pass
with strict checks, so a visitor's code that is not Base45 fails with
:class:`Base45Error` instead of decoding to garbage.
"""

from __future__ import annotations

import struct

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_TABLE = bytes(ALPHABET.index(chr(b)) if chr(b) in ALPHABET else 0xFF for b in range(256))


class Base45Error(ValueError):
    """The text is not valid Base45 (bad character, bad length, value out of range)."""


def encode(data: bytes) -> str:
    """Base45 text for ``data``."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = (data[i] << 8) | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out.append(ALPHABET[c] + ALPHABET[d] + ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out.append(ALPHABET[c] + ALPHABET[d])
    return "".join(out)


def decode(text: str) -> bytes:
    """Bytes for Base45 ``text``; raises :class:`Base45Error` for anything that is not Base45."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise Base45Error("non-ASCII character") from None
    values = raw.translate(_TABLE)  # one C pass: character -> value, 0xFF = not Base45
    bad = values.find(b"\xff")
    if bad >= 0:
        raise Base45Error(f"character {text[bad]!r} is not Base45")
    n = len(values)
    if n % 3 == 1:
        raise Base45Error("truncated: length leaves one character over")
    whole = n - n % 3
    # Triplets as three strided slices and one struct.pack: the per-character work stays in C.
    pairs = list(map(_triplet, values[0:whole:3], values[1:whole:3], values[2:whole:3]))
    if pairs and max(pairs) > 0xFFFF:
        raise Base45Error(f"triplet at {3 * next(i for i, v in enumerate(pairs) if v > 0xFFFF)} is out of range")
    out = struct.pack(f">{len(pairs)}H", *pairs)
    if n % 3 == 2:
        v = values[-2] + values[-1] * 45
        if v > 0xFF:
            raise Base45Error("final pair is out of range")
        out += bytes((v,))
    return out


def _triplet(c: int, d: int, e: int) -> int:
    return c + d * 45 + e * 2025

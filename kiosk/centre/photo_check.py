"""The photo of a venue's posted code, read as a kiosk reads it and compared with the registry's code.

The inspector photographs the QR code posted at the entrance; the centre reads it with the kiosk's own
decoder cascade (:meth:`kiosk.door.decode.cascade.Cascade.decode_still`, what ``kiosk decode`` uses on
a still image: the same stages in the same order), so "the kiosk cannot read this poster" means
what it says. The SHA-256 of each code read is compared with the venue registry's ``venue_qr_sha256``:

* ``match``: the registry's code is among the codes read;
* ``differs``: codes were read, none is the registry's (an old poster, another venue's, a fake);
* ``unreadable``: no code could be read (the poster is faded, torn, too small, or the photo is bad).

Personal data: a photo at an entrance may show people. The centre never keeps it: it is decoded in
memory and dropped; only the outcome above and the photo's SHA-256 (to show later which photo was
checked, if the inspector's phone still has it) are stored with the visit. docs/inspection.md says so.
"""

from __future__ import annotations

import hashlib
import threading

MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_SIDE = 1600  # longer side the photo is scaled to before reading (a phone's 4000 px: seconds otherwise)
MAX_PIXELS = 50_000_000
# What a photo may be: JPEG, PNG or WebP, told by their first bytes (never by the name or the type sent).
SIGNATURES = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"RIFF", "webp"))

_cascade = None
_lock = threading.RLock()


class PhotoError(ValueError):
    """Not a photo the centre can read: 400 (or 413) with this sentence."""


def image_kind(data: bytes) -> str | None:
    for magic, kind in SIGNATURES:
        if data.startswith(magic) and (kind != "webp" or data[8:12] == b"WEBP"):
            return kind
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOFn), walking its segments without decoding."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # no length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The largest (width, height) any of a WebP's canvas and frame headers declares."""
    sizes, i = [], 12
    while i + 8 <= len(data):
        kind, n = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        c = data[i + 8:i + 8 + min(n, 32)]
        if kind == b"VP8X" and len(c) >= 10:
            sizes.append((1 + int.from_bytes(c[4:7], "little"), 1 + int.from_bytes(c[7:10], "little")))
        elif kind == b"VP8 " and len(c) >= 10:
            sizes.append((int.from_bytes(c[6:8], "little") & 0x3FFF, int.from_bytes(c[8:10], "little") & 0x3FFF))
        elif kind == b"VP8L" and len(c) >= 5:
            bits = int.from_bytes(c[1:5], "little")
            sizes.append((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)))
        i += 8 + n + (n & 1)
    return max(sizes, key=lambda wh: wh[0] * wh[1]) if sizes else None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the image's own header declares it, read before any decoding (None: no header)."""
    kind = image_kind(data)
    if kind == "png":
        return (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) \
            if data[12:16] == b"IHDR" and len(data) >= 24 else None
    if kind == "jpeg":
        return _jpeg_size(data)
    if kind == "webp":
        return _webp_size(data)
    return None


def _gray(data: bytes):
    import cv2
    import numpy as np

    if image_kind(data) is None:
        raise PhotoError("photo: a JPEG, PNG or WebP image (this is neither)")
    # The pixels a header declares are counted before the decoder runs: a few hundred KiB of PNG can
    # declare 20000x20000 pixels, which OpenCV would unpack (400 MB, seconds) before any check after it.
    size = declared_size(data)
    if size is None:
        raise PhotoError("photo: the image is damaged and cannot be opened")
    if size[0] * size[1] > MAX_PIXELS:
        raise PhotoError(f"photo: at most {MAX_PIXELS // 1_000_000} megapixels (this one has "
                         f"{size[0]}x{size[1]}); take the photo again at a lower resolution")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise PhotoError("photo: the image is damaged and cannot be opened")
    h, w = image.shape[:2]
    if h * w > MAX_PIXELS:
        raise PhotoError(f"photo: at most {MAX_PIXELS // 1_000_000} megapixels")
    scale = MAX_SIDE / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return image


def _decoder():
    global _cascade
    with _lock:
        if _cascade is None:
            from kiosk.door.decode.cascade import build_cascade

            _cascade = build_cascade()
        return _cascade


def codes_in(data: bytes) -> list[str]:
    """The texts of the QR codes read in the photo (empty: none could be read)."""
    gray = _gray(data)
    with _lock:  # one cascade, not thread-safe; photos are few (one a visit)
        return [d.text for d in _decoder().decode_still(gray)]


def check(data: bytes, registry_sha256: str) -> tuple[str, str]:
    """(``match`` | ``differs`` | ``unreadable``, the photo's SHA-256)."""
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(f"photo: at most {MAX_PHOTO_BYTES // (1024 * 1024)} MiB")
    found = codes_in(data)
    digest = hashlib.sha256(data).hexdigest()
    if not found:
        return "unreadable", digest
    hashes = {hashlib.sha256(t.encode("utf-8")).hexdigest() for t in found}
    return ("match" if registry_sha256 and registry_sha256 in hashes else "differs"), digest

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
import io
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


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the image's own header declares it, read before any decoding (None: no JPEG, PNG
    or WebP header). Pillow's ``open`` reads the header only; its own bomb limit is ours to apply, not a
    refusal of its own."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with _lock, warnings.catch_warnings():  # the limit is Pillow's global: lifted only while we read
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size if image.format in ("JPEG", "PNG", "WEBP") else None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


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

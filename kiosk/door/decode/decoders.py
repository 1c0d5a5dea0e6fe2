"""QR decoder backends behind one interface: zxing-cpp, ZBar (pyzbar) and OpenCV.

Every backend takes a 2-D uint8 grey image and returns :class:`Decoded` codes;
a backend that cannot read the frame returns ``[]`` and never raises for a
frame it merely fails to read. Libraries are imported when a backend is made,
so the base install (and ``kiosk --version``) needs none of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy

log = logging.getLogger(__name__)

Corners = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Decoded:
    """One code read from a frame: its text and, when known, its 4 corners in frame pixels."""

    text: str
    corners: Corners | None = None


class Decoder(Protocol):
    """Anything that reads QR codes from a grey frame."""

    name: str

    def decode(self, gray: numpy.ndarray) -> list[Decoded]: ...


class LocatingDecoder(Decoder, Protocol):
    """A decoder that also says whether the last frame held a QR symbol it found but could not read
    (the cascade's first stage: a located code gets a second look at once)."""

    located: bool


class DecoderUnavailable(RuntimeError):
    """A backend's library is not installed (or too old) on this machine."""


def _text_from_bytes(data: bytes) -> str:
    # QR byte mode is UTF-8 in practice (HC1, PC-Covid, CCCD); fall back to
    # Shift-JIS (the QR standard's other common charset) and then Latin-1, which never fails.
    for enc in ("utf-8", "shift_jis"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


class ZxingDecoder:
    """zxing-cpp: the fastest and most robust of the three in our measurements.

    ``located`` after :meth:`decode` tells whether the last frame held a QR
    symbol that was found but failed to decode (checksum/format errors):
    the cascade's cue that a second look may pay.
    """

    def __init__(self, try_invert: bool = True, try_downscale: bool = True, binarizer: str = "local"):
        # Inverted (light-on-dark) codes cost a second pass over every frame; the cascade's
        # first stage leaves that to a rescue step.
        self.name = "zxing" if try_invert else "zxing-noinvert"
        try:
            import zxingcpp
        except ImportError as exc:  # pragma: no cover - zxing-cpp is a base dependency
            raise DecoderUnavailable(f"zxing-cpp is not installed: {exc}") from None
        self._zx = zxingcpp
        self._kwargs = {
            "formats": zxingcpp.BarcodeFormat.QRCode,
            "try_rotate": False,  # QR finder patterns are rotation-invariant; rotation only helps 1-D codes
            "try_downscale": try_downscale,
            "binarizer": zxingcpp.Binarizer.LocalAverage if binarizer == "local" else zxingcpp.Binarizer.GlobalHistogram,
        }
        # Plain text keeps control characters as they are (the default "HRI" mode writes <SOH>);
        # try_invert and return_errors appeared in later zxing-cpp releases. Keep what this one knows.
        optional = [("try_invert", try_invert), ("return_errors", True)]
        if hasattr(zxingcpp, "TextMode"):
            optional.insert(0, ("text_mode", zxingcpp.TextMode.Plain))
        for key, value in optional:
            try:
                zxingcpp.read_barcodes(_tiny(), **self._kwargs, **{key: value})
                self._kwargs[key] = value
            except TypeError:
                log.debug("zxing-cpp %s has no %s option", getattr(zxingcpp, "__version__", "?"), key)
        self.located = False

    def decode(self, gray: numpy.ndarray) -> list[Decoded]:
        """Read every QR code in the frame."""
        out = []
        located = False
        for b in self._zx.read_barcodes(gray, **self._kwargs):
            if not getattr(b, "valid", True):
                located = True
                continue
            p = b.position
            corners = ((p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
                       (p.bottom_right.x, p.bottom_right.y), (p.bottom_left.x, p.bottom_left.y))
            out.append(Decoded(_zxing_text(b), tuple((float(x), float(y)) for x, y in corners)))
        self.located = located
        return out


def _zxing_text(b) -> str:
    # zxing-cpp already applies the symbol's ECI charset; text is the right answer
    # unless the payload was binary, where .bytes keeps every byte.
    text = b.text
    if text:
        return text
    raw = getattr(b, "bytes", b"") or b""
    return _text_from_bytes(bytes(raw))


def _tiny():
    import numpy as np

    return np.zeros((8, 8), dtype=np.uint8)


class ZbarDecoder:
    """ZBar through pyzbar (needs libzbar0): a second opinion with a different binariser."""

    name = "zbar"

    def __init__(self):
        try:
            from pyzbar import pyzbar
        except (ImportError, OSError) as exc:
            raise DecoderUnavailable(f"pyzbar/libzbar is not available: {exc}") from None
        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, gray: numpy.ndarray) -> list[Decoded]:
        """Read every QR code in the frame."""
        h, w = gray.shape[:2]
        out = []
        for sym in self._decode((gray.tobytes(), w, h), symbols=self._symbols):
            poly = getattr(sym, "polygon", None)
            corners = tuple((float(p.x), float(p.y)) for p in poly) if poly and len(poly) == 4 else None
            out.append(Decoded(_text_from_bytes(sym.data), corners))
        return out


class OpenCVDecoder:
    """OpenCV's QR detector: ``QRCodeDetectorAruco`` where it exists (OpenCV >= 4.8), else ``QRCodeDetector``.

    ``aruco=None`` picks the best available; ``aruco=False`` forces the classic
    detector (what Raspberry Pi OS Bookworm's OpenCV 4.6 has). Raises
    :class:`DecoderUnavailable` when this OpenCV cannot decode at all (built without quirc).
    """

    def __init__(self, aruco: bool | None = None, cv2_module=None):
        if cv2_module is None:
            try:
                import cv2 as cv2_module
            except ImportError as exc:
                raise DecoderUnavailable(f"OpenCV is not installed: {exc}") from None
        self._cv2 = cv2_module
        has_aruco = hasattr(cv2_module, "QRCodeDetectorAruco")
        if aruco and not has_aruco:
            raise DecoderUnavailable(f"OpenCV {getattr(cv2_module, '__version__', '?')} has no QRCodeDetectorAruco (needs >= 4.8)")
        self.aruco = has_aruco if aruco is None else aruco
        detector_class = cv2_module.QRCodeDetectorAruco if self.aruco else cv2_module.QRCodeDetector
        self._detector = detector_class()
        self.name = "opencv-aruco" if self.aruco else "opencv"
        if not _opencv_can_decode(detector_class, self._detector, cv2_module):
            raise DecoderUnavailable(_NO_QUIRC)

    def decode(self, gray: numpy.ndarray) -> list[Decoded]:
        """Read every QR code in the frame."""
        try:
            ok, texts, points, _ = self._detector.detectAndDecodeMulti(gray)
        except (self._cv2.error, UnicodeDecodeError):
            # OpenCV raises on some degenerate detections, and on payloads that are not UTF-8
            # (its Python binding cannot return them); for us both are "no code"
            return []
        if not ok or texts is None:
            return []
        out = []
        for i, text in enumerate(texts):
            if not text:
                continue
            corners = None
            if points is not None and len(points) > i:
                corners = tuple((float(x), float(y)) for x, y in points[i].reshape(-1, 2)[:4])
            out.append(Decoded(text, corners))
        return out


_NO_QUIRC = "OpenCV built without QR decoding (quirc); OpenCV step disabled"
_SELF_TEST_TEXT = "KIOSK-SELF-TEST"
# Self-test verdict per detector class: the test costs ~1 ms, but a cascade may be built more than once.
_can_decode: dict[type, bool] = {}


def _opencv_can_decode(detector_class: type, detector, cv2_module) -> bool:
    """Whether this OpenCV build decodes QR codes, not merely finds them; tested once per process.

    Debian's python3-opencv 4.6 (Raspberry Pi OS Bookworm) is built without quirc: its
    detector returns corners but always empty text, so it would only ever cost time.
    """
    verdict = _can_decode.get(detector_class)
    if verdict is None:
        import numpy as np
        import segno

        m = np.pad(np.array([list(r) for r in segno.make(_SELF_TEST_TEXT, micro=False).matrix], np.uint8), 4)
        image = np.where(np.kron(m, np.ones((4, 4), np.uint8)) == 1, 0, 255).astype(np.uint8)
        try:
            text = detector.detectAndDecode(image)[0]
        except (cv2_module.error, UnicodeDecodeError):
            text = ""
        verdict = _can_decode[detector_class] = text == _SELF_TEST_TEXT
        if not verdict:
            log.warning("%s (OpenCV %s)", _NO_QUIRC, getattr(cv2_module, "__version__", "?"))
    return verdict


BACKENDS = {
    "zxing": lambda: ZxingDecoder(try_invert=False),
    "zxing-invert": ZxingDecoder,  # zxing-cpp's defaults: also tries light-on-dark codes
    "zbar": ZbarDecoder,
    "opencv": OpenCVDecoder,
}


def make_backend(name: str) -> Decoder:
    """A single backend by name: ``zxing`` (dark-on-light only), ``zxing-invert``, ``zbar`` or ``opencv``."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown decoder {name!r} (known: {', '.join(BACKENDS)})") from None

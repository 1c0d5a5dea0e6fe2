"""Decoder backends and the cascade on generated codes, the shared camera photos and phone-screen frames."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import segno

from kiosk.door.decode.cascade import build_cascade
from kiosk.door.decode.decoders import DecoderUnavailable, OpenCVDecoder, ZbarDecoder, ZxingDecoder, make_backend
from kiosk.testing.screenframes import screen_frames

HC1 = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOO6+IUKRG*I.I0"


def qr_image(text: str, scale: int = 6, invert: bool = False) -> np.ndarray:
    """A clean grey image of a QR code, dark on light (or light on dark)."""
    m = np.array([list(r) for r in segno.make(text, micro=False).matrix], dtype=np.uint8)
    m = np.pad(m, 4)
    img = np.where(np.kron(m, np.ones((scale, scale), np.uint8)) == 1, 0, 255).astype(np.uint8)
    return 255 - img if invert else img


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip()


def photos(testdata: Path) -> list[tuple[np.ndarray, str]]:
    import cv2

    out = []
    for png in sorted((testdata / "photos").glob("*/*.png")):
        txt = png.with_suffix(".txt")
        if txt.exists():
            out.append((cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), normalise(txt.read_text(encoding="utf-8"))))
    return out


def opencv_has_quirc() -> bool:
    """Whether this machine's OpenCV decodes QR codes: Debian's python3-opencv 4.6 only finds them (no quirc)."""
    import cv2

    return cv2.QRCodeDetector().detectAndDecode(qr_image(HC1))[0] == HC1


def opencv_or_unavailable(**kwargs) -> OpenCVDecoder | None:
    """An OpenCV decoder where OpenCV can decode; elsewhere check it refuses to be made, and give None."""
    if opencv_has_quirc():
        return OpenCVDecoder(**kwargs)
    with pytest.raises(DecoderUnavailable, match="without QR decoding"):
        OpenCVDecoder(**kwargs)
    return None


class DetectorWithoutQuirc:
    """OpenCV's classic detector as a build without quirc behaves: codes are found, their text is always empty."""

    _real_class = __import__("cv2").QRCodeDetector  # taken before any test swaps the detector out

    def __init__(self):
        self._real = self._real_class()

    def detectAndDecode(self, img):
        _, points = self._real.detect(img)
        return "", points, None

    def detectAndDecodeMulti(self, img):
        ok, points = self._real.detectMulti(img)
        return ok, ("",) * (len(points) if ok else 0), points, None


@pytest.mark.parametrize("backend", [
    pytest.param(ZxingDecoder, id="ZxingDecoder"),
    pytest.param(ZbarDecoder, id="ZbarDecoder"),
    pytest.param(lambda: opencv_or_unavailable(aruco=False), id="OpenCVDecoder-classic"),
    pytest.param(opencv_or_unavailable, id="OpenCVDecoder"),
])
def test_every_backend_reads_a_clean_code_with_corners(backend):
    decoder = backend()
    if decoder is None:  # OpenCV without quirc: refusing to be made (checked above) is the right behaviour
        assert not opencv_has_quirc()
        return
    found = decoder.decode(qr_image(HC1))
    assert [d.text for d in found] == [HC1]
    xs = [x for x, _ in found[0].corners]
    assert len(found[0].corners) == 4 and min(xs) >= 0 and max(xs) <= qr_image(HC1).shape[1]


def test_backends_read_nothing_from_a_blank_frame():
    blank = np.full((480, 640), 128, np.uint8)
    for decoder in (ZxingDecoder(), ZbarDecoder(), opencv_or_unavailable()):
        assert decoder is None or decoder.decode(blank) == []


def test_zxing_keeps_control_characters_as_they_are():
    text = "\x01\x10AD:SUB:data;;"
    assert [d.text for d in ZxingDecoder().decode(qr_image(text))] == [text]


def test_vietnamese_text_survives_each_backend():
    text = "001099012345|Nguyễn Văn An|01011990"
    for decoder in (ZxingDecoder(), ZbarDecoder()):
        assert [d.text for d in decoder.decode(qr_image(text))] == [text]


def test_opencv_falls_back_to_the_classic_detector_without_aruco():
    """OpenCV 4.6 (Raspberry Pi OS Bookworm) has no QRCodeDetectorAruco."""
    import cv2

    old_cv2 = types.SimpleNamespace(QRCodeDetector=cv2.QRCodeDetector, error=cv2.error, __version__="4.6.0")
    decoder = opencv_or_unavailable(cv2_module=old_cv2)
    if decoder is not None:
        assert decoder.name == "opencv" and not decoder.aruco
        assert [d.text for d in decoder.decode(qr_image(HC1))] == [HC1]
    with pytest.raises(DecoderUnavailable, match="4.8"):
        OpenCVDecoder(aruco=True, cv2_module=old_cv2)


def test_opencv_survives_a_payload_that_is_not_utf8():
    qr = segno.make(b"\x8d\xff\x00binary", micro=False)
    m = np.pad(np.array([list(r) for r in qr.matrix], dtype=np.uint8), 4)
    img = np.where(np.kron(m, np.ones((6, 6), np.uint8)) == 1, 0, 255).astype(np.uint8)
    decoder = opencv_or_unavailable()
    if decoder is not None:  # without quirc there is no payload to return
        decoder.decode(img)  # no exception: an unreturnable payload is "no code" for OpenCV


def test_opencv_without_quirc_is_unavailable_and_the_cascade_reads_with_zxing(monkeypatch, caplog):
    """Debian's python3-opencv 4.6 finds codes but cannot decode them: its step leaves the cascade."""
    import cv2

    no_quirc = types.SimpleNamespace(QRCodeDetector=DetectorWithoutQuirc, error=cv2.error, __version__="4.6.0")
    assert DetectorWithoutQuirc().detectAndDecode(qr_image(HC1))[1] is not None  # it does find the code
    for _ in range(2):
        with pytest.raises(DecoderUnavailable, match=r"without QR decoding \(quirc\); OpenCV step disabled"):
            OpenCVDecoder(aruco=False, cv2_module=no_quirc)
    warnings = [r for r in caplog.records if r.name == "kiosk.door.decode.decoders" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "quirc" in warnings[0].getMessage()  # said once per process, not per build

    # A newer OpenCV built without quirc (it has the Aruco detector): the cascade would keep that step.
    monkeypatch.setattr(cv2, "QRCodeDetectorAruco", type("ArucoWithoutQuirc", (DetectorWithoutQuirc,), {}),
                        raising=False)
    monkeypatch.setattr(cv2, "QRCodeDetector", DetectorWithoutQuirc)
    cascade = build_cascade()
    assert "opencv" not in cascade.backends and all(s.backend != "opencv" for s in cascade.steps)
    assert {s.backend for s in cascade.steps} >= {"zxing", "zxing-invert"}
    assert "opencv left out of the cascade" in caplog.text
    for image in (qr_image(HC1), qr_image(HC1, invert=True)):
        assert [d.text for d in cascade.decode_still(image)] == [HC1]


def test_unknown_backend_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown decoder 'quagga'"):
        make_backend("quagga")


def test_cascade_reads_light_on_dark_codes_the_first_stage_skips():
    cascade = build_cascade()
    img = qr_image(HC1, invert=True)
    assert cascade.first.decode(img) == []
    # The budget grows with each frame; a dark-mode phone held up is read within a few frames.
    texts = [d.text for _ in range(10) for d in cascade.decode(img)]
    assert HC1 in texts


# Measured: the cascade reads 96 of the 97 shared photos (zxing alone 94); the floor leaves margin.
PHOTO_FLOOR = 0.90


def test_cascade_reads_the_shared_camera_photos(testdata):
    cases = photos(testdata)
    assert len(cases) > 50
    cascade = build_cascade()
    read = sum(expected in {normalise(d.text) for d in cascade.decode(image)} for image, expected in cases)
    assert read / len(cases) >= PHOTO_FLOOR, f"read {read}/{len(cases)}"


# Measured on 60 frames of three seeds: 640x480 72..82 %, 1280x720 80..83 % (some frames are
# deliberately unreadable: heavy blur, glare over the code, 2-pixel modules).
@pytest.mark.parametrize("size, floor", [((640, 480), 0.6), ((1280, 720), 0.65)])
def test_cascade_reads_phone_screen_frames(size, floor):
    frames = screen_frames(30, size, seed=7)
    cascade = build_cascade()
    read = sum(f.text in {d.text for d in cascade.decode(f.image)} for f in frames)
    assert read / len(frames) >= floor, f"read {read}/{len(frames)}"


def test_frames_without_a_code_give_no_code():
    cascade = build_cascade()
    for f in screen_frames(25, (640, 480), seed=11, with_code=False):
        assert cascade.decode(f.image) == [], f.params


def test_zxing_decoder_works_with_an_older_zxing_cpp(monkeypatch):
    """zxing-cpp 2.x has no try_invert/return_errors (and 1.x no TextMode): the decoder leaves them out."""
    import zxingcpp

    calls = []

    def read_barcodes(image, formats=None, try_rotate=True, try_downscale=True, binarizer=None):
        calls.append(image.shape)
        return zxingcpp.read_barcodes(image, formats=formats, try_rotate=try_rotate, try_downscale=try_downscale,
                                      binarizer=binarizer)

    old = types.SimpleNamespace(read_barcodes=read_barcodes, BarcodeFormat=zxingcpp.BarcodeFormat,
                                Binarizer=zxingcpp.Binarizer, __version__="2.0.0")
    monkeypatch.setitem(__import__("sys").modules, "zxingcpp", old)
    decoder = ZxingDecoder()
    assert set(decoder._kwargs) == {"formats", "try_rotate", "try_downscale", "binarizer"}
    assert [d.text for d in decoder.decode(qr_image(HC1))] == [HC1]

"""``kiosk poster``: the venue code on paper. The PDF is rendered back to pixels (pdftoppm) and read
with the kiosk's own decoder cascade, its text extracted (pdftotext), its fonts and page listed (pdffonts, pdfinfo)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytest.importorskip("reportlab")
np = pytest.importorskip("numpy")

from device.frames import load_gray  # noqa: E402
from kiosk.cli import main  # noqa: E402
from kiosk.door.decode import default_decoder  # noqa: E402
from kiosk.door.show.venue_qr import QUIET_ZONE  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed (apt)")

QR = "https://qr.tokhaiyte.vn/dd/HN-HK-000123"
DPI = 150


def write_config(tmp_path, name="Nhà sách Tràng Tiền", address="61 Tràng Tiền, Hoàn Kiếm, Hà Nội", qr=QR):
    p = tmp_path / "kiosk.toml"
    p.write_text(f"""
[device]
site = "hn"
id = "k1"
[venue]
id = "HN-HK-000123"
name = "{name}"
address = "{address}"
qr_content = "{qr}"
""", encoding="utf-8")
    return p


def poppler(*args) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=60).stdout


def render(pdf, tmp_path, dpi=DPI):
    stem = tmp_path / "page"
    poppler("pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", str(pdf), str(stem))
    return load_gray(str(stem) + ".png")


def decoded(image) -> list[str]:
    decoder = default_decoder()
    return [d.text for d in getattr(decoder, "decode_still", decoder.decode)(image)]


@pytest.mark.parametrize("size,paper_mm", [("A4", (210, 297)), ("A5", (148, 210))])
def test_poster_decodes_back_to_the_venue_code(tmp_path, capsys, size, paper_mm):
    pdf = tmp_path / "poster.pdf"
    assert main(["poster", "--config", str(write_config(tmp_path)), "--out", str(pdf), "--size", size]) == 0
    assert "QR" in capsys.readouterr().out
    image = render(pdf, tmp_path)
    assert decoded(image) == [QR]
    # The page is the paper asked for.
    info = poppler("pdfinfo", str(pdf))
    w_pt, h_pt = (float(v) for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert (round(w_pt / 72 * 25.4), round(h_pt / 72 * 25.4)) == paper_mm


def test_the_code_is_big_enough_for_arms_length_and_keeps_its_quiet_zone(tmp_path):
    from kiosk.door.show.venue_qr import qr_matrix

    pdf = tmp_path / "poster.pdf"
    assert main(["poster", "--config", str(write_config(tmp_path)), "--out", str(pdf)]) == 0
    image = render(pdf, tmp_path)
    decoder = default_decoder()
    [found] = getattr(decoder, "decode_still", decoder.decode)(image)
    assert found.text == QR and found.corners
    xs, ys = [p[0] for p in found.corners], [p[1] for p in found.corners]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    n = len(qr_matrix(QR))
    symbol_mm = (x1 - x0) / DPI * 25.4
    module_px = (x1 - x0) / n
    # A phone reads a code from about 10 x its width: >= 70 mm reads from 0.7 m, beyond arm's length.
    assert symbol_mm >= 70, symbol_mm
    assert symbol_mm / n >= 2.0  # mm per module
    # The 4-module quiet zone: light all round the symbol.
    q = int(QUIET_ZONE * module_px) - 3
    ix0, ix1, iy0, iy1 = int(x0) - 1, int(x1) + 1, int(y0) - 1, int(y1) + 1
    zone = image[iy0 - q:iy1 + q, ix0 - q:ix1 + q].copy()
    zone[q:-q, q:-q] = 255  # the symbol itself
    assert (zone > 200).all()


def test_poster_has_name_address_instructions_and_venue_id_in_embedded_fonts(tmp_path):
    pdf = tmp_path / "poster.pdf"
    assert main(["poster", "--config", str(write_config(tmp_path)), "--out", str(pdf)]) == 0
    text = " ".join(poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-").split())
    for phrase in ("Nhà sách Tràng Tiền", "61 Tràng Tiền, Hoàn Kiếm, Hà Nội", "Quét mã để khai báo y tế",
                   "Scan to check in", "quét mã này", "scan this code", "Nhập mã địa điểm", "Enter the venue id",
                   "HN-HK-000123", QR):
        assert phrase in text, phrase
    fonts = poppler("pdffonts", str(pdf)).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # every font embedded


def test_a_long_name_address_and_code_still_fit_and_decode(tmp_path):
    long_qr = "https://qr.tokhaiyte.vn/dd/" + "HN-HK-000123-" * 12
    cfg = write_config(tmp_path, name="Trung tâm Thương mại và Dịch vụ Tổng hợp Phường Tràng Tiền Quận Hoàn Kiếm",
                       address="Số 61, phố Tràng Tiền, phường Tràng Tiền, quận Hoàn Kiếm, thành phố Hà Nội, Việt Nam",
                       qr=long_qr)
    pdf = tmp_path / "poster.pdf"
    assert main(["poster", "--config", str(cfg), "--out", str(pdf), "--size", "A5"]) == 0
    assert decoded(render(pdf, tmp_path, dpi=200)) == [long_qr]
    text = " ".join(poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-").split())
    assert "A kiosk at the door?" in text and "HN-HK-000123" in text  # nothing pushed off the page


@pytest.mark.parametrize("args,message", [
    (["--out", "poster.png"], ".pdf"),
    (["--out", "/no/such/folder/p.pdf"], "does not exist"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, args, message):
    argv = ["poster", "--config", str(write_config(tmp_path)), "--out", str(tmp_path / "p.pdf"), *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_paper_size_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["poster", "--config", str(write_config(tmp_path)), "--out", str(tmp_path / "p.pdf"), "--size", "A3"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_no_font_with_vietnamese_letters_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from kiosk.issuing import poster

    poster.find_font.cache_clear()
    monkeypatch.setattr(poster, "KNOWN_FONTS", [])
    monkeypatch.setattr(poster, "fc_match", lambda pattern: None)
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font")
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + f'[screen]\nfont = "{junk}"\n', encoding="utf-8")
    try:
        assert main(["poster", "--config", str(cfg), "--out", str(tmp_path / "p.pdf")]) == 2
    finally:
        poster.find_font.cache_clear()
    err = capsys.readouterr().err
    assert "Vietnamese" in err and "[screen] font" in err and "Traceback" not in err

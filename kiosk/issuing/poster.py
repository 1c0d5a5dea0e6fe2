"""The venue poster: the venue QR code on paper, for the door, the inspector and a kiosk that is off.

One PDF page (A4 or A5, portrait) with the venue code exactly as provisioned
(``[venue] qr_content``, the same segno matrix the screen draws) as vector
squares with its 4-module quiet zone, the venue's name and address, short
instructions in Vietnamese and English, and the venue id for people who type
it in by hand. Text is set in a TTF with the Vietnamese letters, embedded in
the file, so it prints the same on any printer.

Size: a phone reads a QR code from about ten times its width, so the code
(quiet zone included) is 140 mm wide on A4 and 98 mm on A5: readable from
arm's length (0.4-0.7 m) with room to spare, with modules of 2-4 mm for a
typical venue URL (a few metres of print blur and glare).

reportlab is imported only here (the ``poster`` extra): the firmware does not need it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date

from kiosk.config import VenueConfig
from kiosk.errors import KioskValueError
from kiosk.door.show import venue_qr
from kiosk.door.show.fonts import KNOWN_FONTS, VIETNAMESE_PROBE, bold_beside, fc_match

MM = 72 / 25.4  # PDF points per millimetre
PAPER_MM = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}
QR_SIDE_MM = {"A4": 140.0, "A5": 98.0}  # quiet zone included

HEADLINE = ("Quét mã để khai báo y tế", "Scan to check in")
STEPS = (
    ("Mở ứng dụng PC-Covid (hoặc camera điện thoại) và quét mã này.",
     "Open PC-Covid (or your phone's camera) and scan this code."),
    ("Làm theo hướng dẫn trên điện thoại để khai báo.", "Follow the steps on your phone to declare your visit."),
    ("Có máy kiểm tra ở cửa? Đưa mã QR của bạn vào camera của máy.",
     "A kiosk at the door? Show your own QR code to its camera."),
)
MANUAL = ("Không quét được? Nhập mã địa điểm:", "Cannot scan? Enter the venue id:")


class PosterError(KioskValueError):
    """The poster cannot be made as asked (no font with Vietnamese letters, reportlab missing): exit 2."""


@dataclass(frozen=True)
class PosterFacts:
    """What was printed, for the command's one-line answer and the inspector."""

    paper: str
    qr_side_mm: float  # quiet zone included
    module_mm: float
    modules: int  # the symbol's width in modules, quiet zone not included
    font: str


def _covers_vietnamese(path: str) -> bool:
    """True when the TTF maps every probe letter to a glyph (reportlab reads the font's cmap)."""
    from reportlab.pdfbase.ttfonts import TTFont, TTFError

    try:
        face = TTFont("probe", path).face
    except (TTFError, OSError, ValueError, KeyError, IndexError):
        return False
    cmap = getattr(face, "charToGlyph", {})
    return all(ord(c) in cmap and cmap[ord(c)] for c in VIETNAMESE_PROBE)


@functools.lru_cache(maxsize=4)
def find_font(configured: str = "") -> tuple[str, str]:
    """(regular, bold) TTF files with the Vietnamese letters, found as the screen finds its font.

    ``[screen] font`` first, then fontconfig's choice for Vietnamese, then the
    usual DejaVu/Noto paths; raises :class:`PosterError` when none has them.
    """
    candidates: list[tuple[str | None, str | None]] = []
    if configured:
        path = os.path.expanduser(configured)
        candidates.append((path, bold_beside(path) if os.path.isfile(path) else None))
    regular = fc_match("sans-serif:lang=vi")
    if regular:
        candidates.append((regular, fc_match("sans-serif:lang=vi:weight=bold") or bold_beside(regular)))
    candidates += KNOWN_FONTS
    for reg, bold in candidates:
        if reg and os.path.isfile(reg) and reg.lower().endswith((".ttf", ".otf")) and _covers_vietnamese(reg):
            good_bold = bold if bold and os.path.isfile(bold) and _covers_vietnamese(bold) else reg
            return reg, good_bold
    raise PosterError("no TrueType font with Vietnamese letters found: install fonts-dejavu-core "
                      "or set [screen] font to a .ttf file that has them")


def _wrapped(canvas, text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.lib.utils import simpleSplit

    return simpleSplit(text, font, size, width)


def make_poster(venue: VenueConfig, out_path: str, paper: str = "A4", font: str = "",
                today: date | None = None) -> PosterFacts:
    """Write the poster of ``venue`` (the ``[venue]`` section) to ``out_path`` as a one-page PDF."""
    if paper not in PAPER_MM:
        raise PosterError(f"paper size must be one of {', '.join(PAPER_MM)}, got {paper!r}")
    try:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont
        from reportlab.pdfgen import canvas as pdfcanvas
    except ImportError:
        raise PosterError("the poster needs reportlab: pip install 'checkin-kiosk[poster]'") from None

    regular_file, bold_file = find_font(font)
    pdfmetrics.registerFont(TTFont("Kiosk", regular_file))  # TTFs are always embedded (subset) by reportlab
    pdfmetrics.registerFont(TTFont("Kiosk-Bold", bold_file))
    page_w, page_h = (v * MM for v in PAPER_MM[paper])
    scale = page_w / (210 * MM)  # A5 is A4 at 0.7: the same poster, smaller
    margin = 14 * MM * scale
    width = page_w - 2 * margin

    # initialFontName: no unembedded Helvetica in the file, every font in it is the embedded TTF.
    c = pdfcanvas.Canvas(out_path, pagesize=(page_w, page_h), pageCompression=1, initialFontName="Kiosk")
    c.setTitle(f"{venue.name}: venue QR code")
    c.setAuthor("checkin-kiosk")
    c.setSubject(f"venue {venue.id}")
    ink, muted, band = (0.11, 0.13, 0.15), (0.35, 0.38, 0.43), (0.08, 0.35, 0.69)

    # Headline band.
    band_h = 26 * MM * scale
    c.setFillColorRGB(*band)
    c.rect(0, page_h - band_h, page_w, band_h, stroke=0, fill=1)
    c.setFillColorRGB(1, 1, 1)
    c.setFont("Kiosk-Bold", 21 * scale)
    c.drawCentredString(page_w / 2, page_h - band_h + 14 * MM * scale, HEADLINE[0])
    c.setFont("Kiosk", 15 * scale)
    c.drawCentredString(page_w / 2, page_h - band_h + 6 * MM * scale, HEADLINE[1])

    # Venue name and address.
    y = page_h - band_h - 12 * MM * scale
    c.setFillColorRGB(*ink)
    for line in _wrapped(c, venue.name, "Kiosk-Bold", 22 * scale, width)[:2]:
        c.setFont("Kiosk-Bold", 22 * scale)
        c.drawCentredString(page_w / 2, y, line)
        y -= 9 * MM * scale
    if venue.address:
        c.setFillColorRGB(*muted)
        c.setFont("Kiosk", 12 * scale)
        for line in _wrapped(c, venue.address, "Kiosk", 12 * scale, width)[:2]:
            c.drawCentredString(page_w / 2, y, line)
            y -= 5.5 * MM * scale
    y -= 2 * MM * scale

    # The venue QR code: one vector square per dark module, the quiet zone left white.
    matrix = venue_qr.qr_matrix(venue.qr_content)
    n = len(matrix)
    total = n + 2 * venue_qr.QUIET_ZONE
    # A long name or address takes room from the code, never from the instructions below it.
    side = min(QR_SIDE_MM[paper] * MM, y - 95 * MM * scale)
    module = side / total
    x0, top = (page_w - side) / 2, y
    c.setFillColorRGB(1, 1, 1)
    c.rect(x0, top - side, side, side, stroke=0, fill=1)
    c.setFillColorRGB(0, 0, 0)
    path = c.beginPath()
    for row, cells in enumerate(matrix):
        col = 0
        while col < n:  # runs of dark modules as one rectangle each: exact edges, a small file
            if cells[col]:
                start = col
                while col < n and cells[col]:
                    col += 1
                path.rect(x0 + (venue_qr.QUIET_ZONE + start) * module,
                          top - (venue_qr.QUIET_ZONE + row + 1) * module, (col - start) * module, module)
            else:
                col += 1
    c.drawPath(path, stroke=0, fill=1)
    y = top - side - 6 * MM * scale

    # Instructions, Vietnamese first, each followed by its English.
    for i, (vi, en) in enumerate(STEPS, 1):
        c.setFillColorRGB(*ink)
        c.setFont("Kiosk-Bold", 12.5 * scale)
        indent = c.stringWidth(f"{i}. ", "Kiosk-Bold", 12.5 * scale)
        for k, line in enumerate(_wrapped(c, vi, "Kiosk-Bold", 12.5 * scale, width - indent)):
            if k == 0:
                c.drawString(margin, y, f"{i}.")
            c.drawString(margin + indent, y, line)
            y -= 5.6 * MM * scale
        c.setFillColorRGB(*muted)
        c.setFont("Kiosk", 11 * scale)
        for line in _wrapped(c, en, "Kiosk", 11 * scale, width - indent):
            c.drawString(margin + indent, y, line)
            y -= 5 * MM * scale
        y -= 2 * MM * scale

    # The venue id for manual entry, in a box.
    box_h = 17 * MM * scale
    y -= box_h - 2 * MM * scale
    c.setStrokeColorRGB(*band)
    c.setLineWidth(1.2)
    c.roundRect(margin, y, width, box_h, 3 * MM * scale, stroke=1, fill=0)
    c.setFillColorRGB(*muted)
    c.setFont("Kiosk", 10 * scale)
    c.drawString(margin + 4 * MM * scale, y + box_h - 6 * MM * scale, f"{MANUAL[0]}  /  {MANUAL[1]}")
    c.setFillColorRGB(*ink)
    c.setFont("Kiosk-Bold", 18 * scale)
    c.drawString(margin + 4 * MM * scale, y + 3.5 * MM * scale, venue.id)

    # Footer for the inspector: what the code holds, and when this was printed.
    c.setFillColorRGB(*muted)
    c.setFont("Kiosk", 7 * scale)
    printed = (today or date.today()).strftime("%d/%m/%Y")
    footer = f"Nội dung mã / Code content: {venue.qr_content}"
    for k, line in enumerate(_wrapped(c, footer, "Kiosk", 7 * scale, width)[:2]):
        c.drawString(margin, 9 * MM * scale - k * 3 * MM * scale, line)
    c.drawRightString(page_w - margin, 4 * MM * scale, f"In ngày / Printed {printed}")
    c.showPage()
    try:
        c.save()
    except OSError as exc:
        raise PosterError(f"cannot write {out_path!r}: {exc.strerror or exc}") from None
    return PosterFacts(paper=paper, qr_side_mm=side / MM, module_mm=module / MM, modules=n,
                       font=os.path.basename(regular_file))

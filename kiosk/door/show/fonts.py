"""A TTF font that has the Vietnamese letters, and text sized to fit a box.

pygame's built-in font may lack Vietnamese letters (ễ, ạ, ơ show as boxes with
the PyPI wheels' freesansbold; Debian's build draws them), so the screen
looks for a real font: ``[screen] font`` first, then what fontconfig offers
for Vietnamese, then the usual DejaVu/Noto paths of Debian and Raspberry Pi OS. A font is used only if it really draws ``ễ``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass

from kiosk.door.show.names import printable

log = logging.getLogger(__name__)

# Letters a Vietnamese font must have (tone marks stacked on circumflex/breve, the horned vowels, đ).
VIETNAMESE_PROBE = "ễặơưđĐạỹ"

KNOWN_FONTS = [
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ("/usr/share/fonts/noto/NotoSans-Regular.ttf", "/usr/share/fonts/noto/NotoSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/freefont/FreeSans.ttf", "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf"),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
     "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
]


@dataclass(frozen=True)
class FontFiles:
    """Regular and bold font files; ``None`` is pygame's built-in font (last resort)."""

    regular: str | None
    bold: str | None


def draws_vietnamese(path: str | None) -> bool:
    """True when the font draws every probe letter (not the "missing glyph" box)."""
    import pygame

    pygame.font.init()
    try:
        font = pygame.font.Font(path, 24)
    except (OSError, pygame.error):
        return False

    def pixels(ch: str) -> bytes:
        return pygame.image.tostring(font.render(ch, False, (255, 255, 255), (0, 0, 0)), "RGB")

    try:
        missing = pixels("\ufdd0")  # a non-character: every font draws its missing-glyph box for it
        return all(pixels(ch) != missing for ch in VIETNAMESE_PROBE)
    except pygame.error:  # not really a font (pygame opens some junk files and fails on the first render)
        return False


def fc_match(pattern: str) -> str | None:
    """The font file fontconfig picks for ``pattern`` (e.g. ``sans-serif:lang=vi``), or None without fc-match."""
    exe = shutil.which("fc-match")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-f", "%{file}", pattern], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path and os.path.isfile(path) else None


def bold_beside(regular: str) -> str | None:
    """The bold file next to a regular one, by the usual naming."""
    base, ext = os.path.splitext(regular)
    for stem in (base.replace("-Regular", "-Bold"), base + "-Bold", base + "Bold", base.replace("Regular", "Bold")):
        cand = stem + ext
        if cand != regular and os.path.isfile(cand):
            return cand
    return None


@functools.lru_cache(maxsize=8)
def find_fonts(configured: str = "") -> FontFiles:
    """The fonts the screen uses; logged once. Never fails (falls back with a WARNING)."""
    if configured:
        path = os.path.expanduser(configured)
        if os.path.isfile(path) and draws_vietnamese(path):
            return FontFiles(path, bold_beside(path) or path)
        log.warning("[screen] font %r %s; looking for a system font", configured,
                    "is missing Vietnamese letters" if os.path.isfile(path) else "not found")
    candidates: list[tuple[str | None, str | None]] = []
    regular = fc_match("sans-serif:lang=vi")
    if regular:
        candidates.append((regular, fc_match("sans-serif:lang=vi:weight=bold") or bold_beside(regular)))
    candidates += KNOWN_FONTS
    for reg, bold in candidates:
        if reg and os.path.isfile(reg) and draws_vietnamese(reg):
            bold = bold if bold and os.path.isfile(bold) and draws_vietnamese(bold) else reg
            log.info("screen font: %s (bold: %s)", reg, bold)
            return FontFiles(reg, bold)
    log.warning("no font with Vietnamese letters found (install fonts-dejavu-core or set [screen] font); "
                "Vietnamese text will show boxes")
    return FontFiles(None, None)


class Fonts:
    """pygame fonts by size, cached; text fitted into boxes."""

    def __init__(self, files: FontFiles):
        import pygame

        pygame.font.init()
        self.files = files
        self._cache: dict[tuple[bool, int], "pygame.font.Font"] = {}

    def get(self, size: int, bold: bool = False):
        import pygame

        size = max(6, int(size))
        key = (bold, size)
        font = self._cache.get(key)
        if font is None:
            if len(self._cache) > 64:  # fitting tries many sizes; keep memory bounded
                self._cache.clear()
            font = pygame.font.Font(self.files.bold if bold else self.files.regular, size)
            self._cache[key] = font
        return font

    def render(self, text: str, size: int, color, bold: bool = False):
        """One line of text (NFC, so decomposed tone marks still find their glyphs).

        Control characters are dropped (:func:`kiosk.door.show.names.printable`):
        nothing from a code or a notice can make pygame raise.
        """
        return self.get(size, bold).render(printable(text), True, color)

    def wrap(self, text: str, size: int, width: int, bold: bool = False) -> list[str]:
        """Break ``text`` into lines no wider than ``width`` (a too-long word gets its own line)."""
        font = self.get(size, bold)
        lines: list[str] = []
        for paragraph in unicodedata.normalize("NFC", text).split("\n"):
            paragraph = printable(paragraph)
            line = ""
            for word in paragraph.split():
                trial = f"{line} {word}" if line else word
                if line and font.size(trial)[0] > width:
                    lines.append(line)
                    line = word
                else:
                    line = trial
            lines.append(line)
        return lines

    def fit(self, text: str, width: int, height: int, max_size: int, bold: bool = False,
            min_size: int = 10, max_lines: int = 3) -> tuple[int, list[str]]:
        """The largest size (<= ``max_size``) at which ``text`` wraps into the box; and its lines."""
        size = max(min_size, int(max_size))
        while True:
            lines = self.wrap(text, size, width, bold)
            font = self.get(size, bold)
            too_wide = any(font.size(line)[0] > width for line in lines)
            if size <= min_size or (len(lines) <= max_lines and not too_wide
                                    and len(lines) * font.get_linesize() <= height):
                return size, lines[:max_lines]
            size = max(min_size, int(size * 0.9))

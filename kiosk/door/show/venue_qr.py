"""The venue QR code: exactly the provisioned content, whole pixels per module.

Each module is drawn as a block of the same whole number of pixels (no
smoothing), with the 4-module light quiet zone the QR standard asks for, so
a phone reads it from arm's length and an inspector can check its size.
"""

from __future__ import annotations

import functools
import logging

QUIET_ZONE = 4  # modules of light margin on every side (ISO/IEC 18004)
MIN_MODULE_PX = 6  # below this a phone at arm's length struggles on a 7" screen

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def qr_matrix(content: str) -> tuple[tuple[bool, ...], ...]:
    """Dark/light modules of the venue code (without quiet zone).

    Error correction M at least (segno raises it when the size allows):
    a screen can have glare and dust.
    """
    import segno

    qr = segno.make(content, error="m", micro=False, boost_error=True)
    return tuple(tuple(bool(v) for v in row) for row in qr.matrix)


def modules_with_quiet_zone(content: str) -> int:
    """Width of the code in modules, quiet zone included."""
    return len(qr_matrix(content)) + 2 * QUIET_ZONE


def module_px_for(content: str, side_px: int) -> int:
    """The largest whole module size that fits the code (with quiet zone) in ``side_px``."""
    return max(1, side_px // modules_with_quiet_zone(content))


def qr_surface(content: str, module_px: int, dark=(0, 0, 0), light=(255, 255, 255)):
    """A pygame surface of the code at ``module_px`` pixels per module, quiet zone included."""
    import pygame

    matrix = qr_matrix(content)
    n = len(matrix) + 2 * QUIET_ZONE
    small = pygame.Surface((n, n))
    small.fill(light)
    for y, row in enumerate(matrix):
        for x, v in enumerate(row):
            if v:
                small.set_at((x + QUIET_ZONE, y + QUIET_ZONE), dark)
    # transform.scale is nearest-neighbour: crisp module edges, exact multiples.
    return pygame.transform.scale(small, (n * module_px, n * module_px))

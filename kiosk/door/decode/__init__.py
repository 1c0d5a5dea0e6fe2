"""Decode: QR decoders (zxing-cpp, ZBar, OpenCV), the cascade, and the camera scan threads.

Public names (see docs/architecture.md, "Decode"): :class:`Decoded`,
:class:`Decoder`, :func:`default_decoder`, :class:`CodeSeen`,
:class:`Scanner`, :class:`ScanStats`. Importing this package loads no image
library; the decoders import theirs when they are made.
"""

from __future__ import annotations

from device.scanners import CodeSeen
from kiosk.door.decode.decoders import Decoded, Decoder, DecoderUnavailable
from kiosk.door.decode.scanner import Scanner
from kiosk.door.decode.stats import ScanStats

__all__ = ["CodeSeen", "Decoded", "Decoder", "DecoderUnavailable", "Scanner", "ScanStats", "default_decoder"]


def default_decoder() -> Decoder:
    """The cascade the live pipeline and ``kiosk decode`` use (a new one per decode thread)."""
    from kiosk.door.decode.cascade import build_cascade

    return build_cascade()

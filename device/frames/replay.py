"""Frames in memory, replayed (the demo's sample visitors, tests), as fast as read or at a set pace."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from device.frames.base import CameraError, Frame, FrameSource, Pacer

if TYPE_CHECKING:
    import numpy


class ReplaySource(FrameSource):
    """Frames from images in memory, for the demo and tests.

    ``fps=0`` hands frames over as fast as they are taken (none dropped);
    ``fps>0`` paces them like a camera would.
    """

    def __init__(self, images: list[numpy.ndarray], loop: bool = False, fps: float = 0.0, name: str = "replay"):
        self.images = list(images)
        self.loop = loop
        self.name = name
        self.realtime = fps > 0
        self._pacer = Pacer(fps)
        self._pos = 0
        self._index = 0
        self._opened = False

    def open(self) -> None:
        self._opened = True
        self._pacer.wake.clear()

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError(f"{self.name}: read before open")
        if self._pos >= len(self.images):
            if not self.loop or not self.images:
                return None
            self._pos = 0
        self._pacer.wait()
        image = self.images[self._pos]
        self._pos += 1
        self._index += 1
        return Frame(image, time.monotonic(), self._index)

    def interrupt(self) -> None:
        self._pacer.wake.set()

    def close(self) -> None:
        self._opened = False
        self._pacer.wake.set()

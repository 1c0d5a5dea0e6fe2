"""No camera (``[camera] source = "none"``): codes come from USB scanners only; never a frame, never exhausted."""

from __future__ import annotations

import threading

from device.frames.base import Frame, FrameSource


class NullSource(FrameSource):
    """No camera (codes come only from USB scanners): ``read()`` waits until closed, then ends."""

    name = "none"

    def __init__(self) -> None:
        self._closed = threading.Event()

    def open(self) -> None:
        self._closed.clear()

    def read(self) -> Frame | None:
        self._closed.wait()
        return None

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()

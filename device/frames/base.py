"""What every frame source is: :class:`FrameSource` (open, read one :class:`Frame`, close), its error, its pacing."""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device import DeviceError

if TYPE_CHECKING:
    import numpy


class CameraError(DeviceError, OSError):
    """The camera is absent or failed; the message is for the guard's status bar."""


@dataclass
class Frame:
    """One captured picture.

    ``image`` is what the decoder reads: 2-D uint8 luma, or HxWx3 BGR from
    sources that capture colour. ``preview`` optionally carries a larger
    colour picture for the screen (Picamera2's main stream); code corners are
    always in ``image`` pixels.
    """

    image: numpy.ndarray
    captured_at: float  # time.monotonic() when the frame was captured
    index: int  # running frame number from this source
    preview: numpy.ndarray | None = None


class FrameSource(ABC):
    """A camera or replay. A context manager; ``close()`` is idempotent."""

    name: str = "source"
    #: Frames arrive at their own pace (camera, paced replay): a slow decoder must skip to the newest.
    realtime: bool = True

    @abstractmethod
    def open(self) -> None:
        """Start capturing; raises :class:`CameraError` when the device is absent."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame; ``None`` when a replay is exhausted; raises :class:`CameraError` on a fault."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Safe to call twice, or without ``open()``."""

    def interrupt(self) -> None:
        """Ask a ``read()`` blocked in another thread to return soon (used on stop). Optional."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pacer:
    """Spaces replayed frames at a given rate; interruptible, so stop() is prompt."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next = 0.0
        self.wake = threading.Event()

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self._next > now:
            self.wake.wait(self._next - now)
        # Never try to catch up a backlog: a late frame moves the schedule.
        self._next = max(self._next, now) + self.period


def path_expand(path: str) -> str:
    """A configured path with ``~`` expanded."""
    return os.path.expanduser(path)

"""Frame sources, one backend per file: the Pi camera, a USB webcam or video file, a folder of images, memory.

Every source is a :class:`FrameSource` (:mod:`device.frames.base`): ``open()``, ``read()``
one :class:`Frame` at a time, ``close()``. A live camera is ``realtime`` (frames arrive at
the camera's pace, so a slow reader must drop old ones); a replay read as fast as possible is
not (every frame is worth decoding). Heavy libraries (numpy, OpenCV, picamera2) are imported
only by the sources that need them, when they are opened. :func:`open_source` picks one by
``[camera] source``, as gpiozero picks its pin factory.
"""

from __future__ import annotations

from device import DeviceValueError
from device.frames.base import CameraError, Frame, FrameSource
from device.frames.folder import IMAGE_SUFFIXES, FolderSource, load_gray
from device.frames.null import NullSource
from device.frames.opencv import OpenCVSource
from device.frames.picamera import Picamera2Source
from device.frames.replay import ReplaySource

__all__ = ["CameraError", "FolderSource", "Frame", "FrameSource", "IMAGE_SUFFIXES", "NullSource", "OpenCVSource",
           "Picamera2Source", "ReplaySource", "load_gray", "open_source"]


def open_source(kind: str, path: str = "", width: int = 640, height: int = 480, fps: int = 30,
                loop: bool = False, replay_fps: float = 0.0, **options: object) -> FrameSource:
    """The configured frame source, not yet opened (``[camera] source``).

    ``kind``: ``picamera2`` (``path`` = camera number, default 0) | ``opencv`` | ``folder`` | ``none``. ``options``
    go to the source (``preview=True``, ``camera_class=`` for picamera2).
    """
    if kind == "picamera2":
        if path.isdigit():  # a second camera (Pi 5, Compute Module): [camera] path = "1"
            options.setdefault("camera_num", int(path))
        return Picamera2Source(width, height, fps, **options)
    if kind == "opencv":
        return OpenCVSource(path, width, height, fps, loop=loop, replay_fps=replay_fps)
    if kind == "folder":
        if not path:
            raise CameraError("a folder source needs [camera] path")
        return FolderSource(path, loop=loop, fps=replay_fps)
    if kind == "none":
        return NullSource()
    raise DeviceValueError(f"unknown frame source {kind!r} (known: picamera2, opencv, folder, none)")

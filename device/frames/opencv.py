"""A USB webcam or a video file through OpenCV (``[camera] source = "opencv"``)."""

from __future__ import annotations

import logging
import os
import time

from device.frames.base import CameraError, Frame, FrameSource, Pacer, path_expand

log = logging.getLogger(__name__)


class OpenCVSource(FrameSource):
    """A USB webcam (``path`` = device index, e.g. ``"0"``) or a video file through OpenCV.

    Webcams deliver BGR (the preview shows colour); the decoder converts to grey.
    """

    def __init__(self, path: str = "0", width: int = 640, height: int = 480, fps: int = 30,
                 loop: bool = False, replay_fps: float = 0.0):
        self.path = path or "0"
        self.width, self.height, self.fps = width, height, fps
        self.loop = loop
        self.is_device = self.path.isdigit() or self.path.startswith("/dev/video")
        self.name = f"opencv:{self.path}"
        self.realtime = self.is_device or replay_fps > 0
        self._pacer = Pacer(0.0 if self.is_device else replay_fps)
        self._cap = None
        self._index = 0

    def open(self) -> None:
        import cv2

        target: int | str = int(self.path) if self.path.isdigit() else path_expand(self.path)
        if not self.is_device and not os.path.isfile(str(target)):
            raise CameraError(f"video file {self.path!r} does not exist")
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera {self.path!r}")
        if self.is_device:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            # A one-frame driver queue: the newest picture, not one from a second ago.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        self._pacer.wake.clear()

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        self._pacer.wait()
        ok, image = self._cap.read()
        if not ok:
            if not self.is_device:
                if not self.loop:
                    return None
                import cv2

                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._cap.read()
                if not ok:
                    return None
            else:
                raise CameraError(f"camera {self.path!r} stopped delivering frames")
        self._index += 1
        return Frame(image, time.monotonic(), self._index)

    def interrupt(self) -> None:
        self._pacer.wake.set()

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

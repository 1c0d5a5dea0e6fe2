"""The Raspberry Pi camera through picamera2 (``[camera] source = "picamera2"``), imported only when opened."""

from __future__ import annotations

import logging
import time

from device import DeviceValueError
from device.frames.base import CameraError, Frame, FrameSource

log = logging.getLogger(__name__)


class Picamera2Source(FrameSource):
    """The Raspberry Pi camera through picamera2.

    Two streams: ``lores`` (YUV420 at the decode size) whose Y plane is the
    decoder's grey frame, and ``main`` (colour) for the screen's preview,
    copied only when ``preview=True``. Each read asks for a frame whose
    exposure started at most one frame period ago (``capture_request(flush=)``),
    so a verdict never comes from a picture queued before the visitor arrived,
    and gives up after ``frame_timeout_s`` (a hung camera becomes a CameraError).
    ``camera_class`` replaces ``picamera2.Picamera2`` (tests pass a fake).
    """

    name = "picamera2"
    realtime = True

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, preview: bool = False,
                 preview_size: tuple[int, int] | None = None, camera_num: int = 0, camera_class: object = None,
                 frame_timeout_s: float = 2.0):
        if width % 2 or height % 2:
            raise DeviceValueError("picamera2 lores width and height must be even")
        self.width, self.height, self.fps = width, height, fps
        self.preview = preview
        # main must be at least the lores size; 4:3 or 16:9 like the sensor modes.
        self.preview_size = preview_size or (max(width, 640), max(height, 480))
        self.camera_num = camera_num
        self._camera_class = camera_class
        self._cam = None
        self._index = 0
        self._flush_supported = True
        self._period_ns = int(1e9 / max(1, fps))
        self.frame_timeout_s = frame_timeout_s

    def _camera_factory(self):
        if self._camera_class is not None:
            return self._camera_class
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(f"picamera2 is not installed (apt install python3-picamera2): {exc}") from None
        return Picamera2

    def open(self) -> None:
        cls = self._camera_factory()
        try:
            cam = cls(self.camera_num)
        except Exception as exc:  # picamera2 raises IndexError/RuntimeError when no camera is attached
            raise CameraError(f"no camera {self.camera_num}: {exc}") from None
        try:
            config = cam.create_video_configuration(
                main={"size": self.preview_size, "format": "RGB888"},
                lores={"size": (self.width, self.height), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)},
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            _quiet_close(cam)
            raise CameraError(f"camera {self.camera_num} failed to start: {exc}") from None
        self._cam = cam
        self._flush_supported = True

    def _request(self):
        cam = self._cam
        # A frame exposed from one period ago on: the newest, without waiting a whole extra frame.
        flush = {"flush": time.monotonic_ns() - self._period_ns} if self._flush_supported else {}
        try:
            job = cam.capture_request(wait=False, **flush)
        except TypeError:
            log.info("this picamera2 has no capture_request(flush=); frames are not flushed")
            self._flush_supported = False
            job = cam.capture_request(wait=False)
        # wait=False gives a Job: waiting on it with a timeout turns a hung camera into an error
        # (the scanner then reopens it) instead of a capture thread blocked for ever.
        try:
            try:
                return job.get_result(timeout=self.frame_timeout_s)
            except TypeError:  # an early picamera2 whose jobs wait without a timeout
                return job.get_result()
        except TimeoutError:
            raise CameraError(f"no frame from the camera for {self.frame_timeout_s:.0f} s") from None

    def read(self) -> Frame | None:
        if self._cam is None:
            raise CameraError("picamera2 is not open")
        try:
            request = self._request()
        except CameraError:
            raise
        except Exception as exc:
            raise CameraError(f"camera capture failed: {exc}") from None
        try:
            yuv = request.make_array("lores")
            # YUV420 comes as (height * 3/2, stride) rows: the first `height` rows are Y.
            gray = yuv[: self.height, : self.width]
            if not gray.flags["C_CONTIGUOUS"]:
                import numpy as np

                gray = np.ascontiguousarray(gray)
            preview = request.make_array("main") if self.preview else None
            captured_at = _sensor_time(request)
        except Exception as exc:
            raise CameraError(f"camera frame unreadable: {exc}") from None
        finally:
            request.release()
        self._index += 1
        return Frame(gray, captured_at, self._index, preview)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            _quiet_close(cam)


def _sensor_time(request) -> float:
    """The frame's sensor timestamp on the monotonic clock, or now when it is missing or implausible."""
    now = time.monotonic()
    try:
        ts = request.get_metadata().get("SensorTimestamp")
    except Exception:
        ts = None
    if ts:
        t = ts / 1e9
        # libcamera stamps frames on CLOCK_BOOTTIME/MONOTONIC; guard against a clock we do not expect.
        if now - 2.0 < t <= now + 0.01:
            return t
    return now


def _quiet_close(cam) -> None:
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as exc:  # a vanished camera may refuse even to close
            log.debug("picamera2 %s failed: %s", step, exc)

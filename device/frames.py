"""Frame sources: the Pi camera, a USB webcam or video file, a folder of images, frames in memory.

Every source is a :class:`FrameSource`: ``open()``, ``read()`` one :class:`Frame`
at a time, ``close()``. A live camera is ``realtime`` (frames arrive at the
camera's pace, so a slow reader must drop old ones); a replay read as fast as
possible is not (every frame is worth decoding). Heavy libraries (numpy,
OpenCV, picamera2) are imported only by the sources that need them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device import DeviceError, DeviceValueError

if TYPE_CHECKING:
    import numpy

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


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

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Pacer:
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
        self._pacer = _Pacer(fps)
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


class FolderSource(ReplaySource):
    """Images from a folder, in name order, read as grey (the decoder's input)."""

    def __init__(self, path: str, loop: bool = False, fps: float = 0.0):
        super().__init__([], loop=loop, fps=fps, name=f"folder:{path}")
        self.path = path
        self._files: list[Path] = []

    def open(self) -> None:
        folder = Path(path_expand(self.path))
        if not folder.is_dir():
            raise CameraError(f"image folder {str(folder)!r} does not exist")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraError(f"no images in {str(folder)!r}")
        self._pos = 0
        super().open()

    def read(self) -> Frame | None:
        if not self._opened:
            raise CameraError(f"{self.name}: read before open")
        for _ in range(len(self._files)):
            if self._pos >= len(self._files):
                if not self.loop:
                    return None
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            try:
                image = load_gray(path)
            except OSError:
                image = None
            if image is None:
                log.warning("skipping unreadable image %s", path)
                continue
            self._pacer.wait()
            self._index += 1
            return Frame(image, time.monotonic(), self._index)
        return None


def load_gray(path: str | os.PathLike) -> numpy.ndarray | None:
    """An image file as 2-D grey, or None when it is not an image; OSError when it cannot be read."""
    import cv2
    import numpy as np

    with open(path, "rb") as f:  # read ourselves: clear OSErrors, no OpenCV warnings on stderr
        data = np.frombuffer(f.read(), np.uint8)
    if not data.size:
        return None
    try:
        return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    except cv2.error:
        return None


def path_expand(path: str) -> str:
    return os.path.expanduser(path)


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
        self._pacer = _Pacer(0.0 if self.is_device else replay_fps)
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
                 preview_size: tuple[int, int] | None = None, camera_num: int = 0, camera_class: Any = None,
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


def open_source(kind: str, path: str = "", width: int = 640, height: int = 480, fps: int = 30,
                loop: bool = False, replay_fps: float = 0.0, **options: Any) -> FrameSource:
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

"""The camera pipeline: a capture thread and a decode thread, newest frame wins.

The capture thread reads the source as fast as it delivers and puts each
frame into a one-frame slot; a frame the decoder has not taken yet is
replaced (and counted as dropped), so the decoder always works on the newest
picture and nothing queues up. A replay read as fast as possible
(``source.realtime`` false) waits for the slot instead: every frame is decoded.

A source that fails is closed and reopened with exponential backoff while
``stats().camera_ok`` is false and ``camera_error`` says why; the rest of the
kiosk keeps running. Both threads are daemons and ``stop()`` returns within
about a second even when a camera driver hangs in ``read()``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

from device.frames import Frame, FrameSource
from device.scanners import CodeSeen
from kiosk.door.decode.decoders import Decoded, Decoder
from kiosk.door.decode.rearm import Rearm
from kiosk.door.decode.stats import RateMeter, ScanStats, Window

if TYPE_CHECKING:
    import numpy

log = logging.getLogger(__name__)


class Scanner:
    """Reads codes from a :class:`~device.frames.FrameSource` and reports each visitor's code once."""

    present = True  # a camera is there (the null camera says False)

    def __init__(self, source: FrameSource, decoder: Decoder, on_code: Callable[[CodeSeen], None],
                 rearm_seconds: float = 3.0, on_frame: Callable[[Frame, list[Decoded]], None] | None = None,
                 *, backoff_min_s: float = 0.5, backoff_max_s: float = 30.0, stall_seconds: float = 3.0,
                 gone_frames: int = 3, gone_seconds: float = 0.3, pause: Callable[[float], object] | None = None):
        self.source = source
        self.decoder = decoder
        self.on_code = on_code
        self.on_frame = on_frame
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.stall_seconds = stall_seconds
        self._rearm = Rearm(rearm_seconds, gone_frames, gone_seconds, realtime=source.realtime)
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._stop = threading.Event()
        # The wait before a failed source is reopened (returns early on stop); a test passes its own to
        # see the backoff asked for, and to let it pass when it chooses, instead of timing real waits.
        self._pause: Callable[[float], object] = pause if pause is not None else self._stop.wait
        self._capture_done = False
        self._exhausted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._camera_ok = True
        self._camera_error = ""
        self._started_at = 0.0
        self._last_frame_at = 0.0
        self._newest_index = 0
        self._captured = self._decoded = self._dropped = 0
        self._capture_rate, self._decode_rate = RateMeter(), RateMeter()
        self._latency_ms = Window()
        self._lag = Window(size=120)
        self._gray_buf: numpy.ndarray | None = None

    # -- control -------------------------------------------------------------

    def start(self) -> None:
        """Open the source (in the capture thread) and start both threads."""
        if self._threads:
            raise RuntimeError("scanner already started")
        self._started_at = time.monotonic()
        for name, target in (("capture", self._capture_loop), ("decode", self._decode_loop)):
            t = threading.Thread(target=target, name=f"scan-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Stop both threads and close the source; returns promptly even if the camera hangs."""
        self._stop.set()
        try:
            self.source.interrupt()
        except Exception as exc:  # an interrupt hook must never keep us from stopping
            log.debug("source interrupt failed: %s", exc)
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + 1.0
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            log.warning("camera thread did not stop within 1 s (driver hung); leaving it behind")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a replay to be exhausted and its last frame decoded; True when it was."""
        return self._exhausted.wait(timeout)

    def __enter__(self) -> Scanner:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- status --------------------------------------------------------------

    def stats(self) -> ScanStats:
        """Frame rates, latency and camera health right now."""
        now = time.monotonic()
        ok, error = self._camera_ok, self._camera_error
        if ok and self._threads and not self._capture_done and self.source.realtime:
            started = self._last_frame_at or self._started_at
            if now - started > self.stall_seconds:
                ok, error = False, f"no frames for {now - started:.0f} s"
        lag = self._lag.values()
        return ScanStats(
            capture_fps=round(self._capture_rate.rate(now), 1),
            decode_fps=round(self._decode_rate.rate(now), 1),
            latency_p95_ms=round(self._latency_ms.percentile(95), 1),
            camera_ok=ok,
            camera_error=error,
            frames_captured=self._captured,
            frames_decoded=self._decoded,
            frames_dropped=self._dropped,
            lag_frames_max=int(max(lag)) if lag else 0,
            latency_mean_ms=round(self._latency_ms.mean(), 1),
        )

    # -- capture thread --------------------------------------------------------

    def _fault(self, what: str, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        if self._camera_ok or message != self._camera_error:
            log.warning("camera %s: %s", what, message)
        self._camera_ok, self._camera_error = False, message

    def _capture_loop(self) -> None:
        source = self.source
        backoff = self.backoff_min_s
        is_open = False
        try:
            while not self._stop.is_set():
                if not is_open:
                    try:
                        source.open()
                        is_open = True
                    except Exception as exc:
                        self._fault("unavailable", exc)
                        self._pause(backoff)
                        backoff = min(backoff * 2, self.backoff_max_s)
                        continue
                try:
                    frame = source.read()
                except Exception as exc:
                    self._fault("failed", exc)
                    _close_quietly(source)
                    is_open = False
                    self._pause(backoff)
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                if frame is None:
                    break  # replay exhausted
                if not self._camera_ok:
                    log.info("camera back")
                self._camera_ok, self._camera_error = True, ""
                backoff = self.backoff_min_s
                self._last_frame_at = time.monotonic()
                self._captured += 1
                self._capture_rate.tick(self._last_frame_at)
                self._hand_off(frame, source.realtime)
        finally:
            if is_open:
                _close_quietly(source)
            with self._cond:
                self._capture_done = True
                self._cond.notify_all()

    def _hand_off(self, frame: Frame, realtime: bool) -> None:
        with self._cond:
            if self._slot is not None:
                if realtime:
                    self._dropped += 1  # the decoder is busy: the newer frame replaces the stale one
                else:
                    while self._slot is not None and not self._stop.is_set():
                        self._cond.wait(0.1)
            self._slot = frame
            self._newest_index = frame.index
            self._cond.notify_all()

    # -- decode thread ---------------------------------------------------------

    def _take(self) -> Frame | None:
        with self._cond:
            while self._slot is None:
                if self._stop.is_set() or self._capture_done:
                    return None
                self._cond.wait(0.1)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    def _decode_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._take()
            if frame is None:
                break
            try:
                decoded = self.decoder.decode(self._gray(frame.image))
            except Exception:
                log.exception("decoder failed on frame %d", frame.index)
                decoded = []
            done = time.monotonic()
            self._decoded += 1
            self._decode_rate.tick(done)
            self._latency_ms.add((done - frame.captured_at) * 1000.0)
            self._lag.add(self._newest_index - frame.index)
            if self.on_frame is not None:
                try:
                    self.on_frame(frame, decoded)
                except Exception:
                    log.exception("frame callback failed")
            for d in self._rearm.filter(decoded, frame.captured_at):
                try:
                    self.on_code(CodeSeen(d.text, frame.captured_at, "camera", d.corners))
                except Exception:
                    log.exception("code callback failed")
        if self._capture_done and not self._stop.is_set():
            self._exhausted.set()

    def _gray(self, image: numpy.ndarray) -> numpy.ndarray:
        if image.ndim == 2:
            return image
        import cv2

        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        buf = self._gray_buf
        if buf is None or buf.shape != image.shape[:2]:
            buf = self._gray_buf = cv2.cvtColor(image, code)
            return buf
        return cv2.cvtColor(image, code, dst=buf)


def _close_quietly(source: FrameSource) -> None:
    try:
        source.close()
    except Exception as exc:
        log.debug("closing %s failed: %s", source.name, exc)

"""The camera pipeline: newest frame wins, one visitor one scan, camera faults, prompt stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from device.frames import CameraError, Frame, FrameSource, ReplaySource
from helpers import wait_for
from kiosk.door.decode import CodeSeen, Decoded, Scanner, ScanStats
from kiosk.door.decode.rearm import Rearm


class TagDecoder:
    """Reads the 'code' written in a frame's first pixel (0 = none), optionally slowly."""

    name = "tag"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.seen: list[int] = []

    def decode(self, gray):
        if self.delay:
            time.sleep(self.delay)
        tag = int(gray[0, 0])
        self.seen.append(tag)
        return [Decoded(f"code-{tag}", ((0, 0), (1, 0), (1, 1), (0, 1)))] if tag else []


def tagged(*tags: int) -> list[np.ndarray]:
    out = []
    for t in tags:
        img = np.zeros((8, 8), np.uint8)
        img[0, 0] = t
        out.append(img)
    return out


def run_replay(images, **kw) -> list[CodeSeen]:
    seen: list[CodeSeen] = []
    scanner = Scanner(ReplaySource(images), TagDecoder(), seen.append, **kw)
    scanner.start()
    assert scanner.wait(5), "replay not finished"
    scanner.stop()
    return seen


def test_a_replay_decodes_every_frame_and_reports_each_visitor_once():
    seen = run_replay(tagged(1, 1, 1, 0, 2, 2, 0, 0, 0, 1))
    assert [c.text for c in seen] == ["code-1", "code-2", "code-1"]
    assert all(c.source == "camera" and c.corners for c in seen)


def test_a_code_missed_for_one_frame_has_not_left_the_view():
    seen = run_replay(tagged(1, 0, 1, 0, 0, 1))
    assert [c.text for c in seen] == ["code-1"]


def test_wait_returns_only_after_the_last_frame_was_decoded():
    seen: list[CodeSeen] = []
    scanner = Scanner(ReplaySource(tagged(0, 0, 3)), TagDecoder(delay=0.02), seen.append)
    scanner.start()
    assert scanner.wait(5)
    assert [c.text for c in seen] == ["code-3"]  # reported before wait() said done
    scanner.stop()
    assert scanner.stats().frames_decoded == 3 and scanner.stats().frames_dropped == 0


def test_rearm_reports_a_code_still_in_view_again_after_the_rearm_time():
    r = Rearm(rearm_seconds=3.0)
    d = [Decoded("HC1:A")]
    reported = [t for t in np.arange(0, 7.0, 0.1) if r.filter(d, float(t))]
    assert [round(float(t), 1) for t in reported] == [0.0, 3.0, 6.0]


def test_rearm_forgets_a_code_that_left_the_view():
    r = Rearm(rearm_seconds=60, gone_frames=3, gone_seconds=0.3)
    assert r.filter([Decoded("A")], 0.0)
    for t in (0.1, 0.2, 0.3, 0.4):
        assert not r.filter([], t)
    assert r.in_view == []
    assert r.filter([Decoded("A")], 0.5)  # the visitor came back: a new scan


def test_rearm_three_empty_frames_within_a_blink_are_not_leaving():
    r = Rearm(rearm_seconds=60, gone_frames=3, gone_seconds=0.3)
    r.filter([Decoded("A")], 0.0)
    for t in (0.03, 0.06, 0.09):
        r.filter([], t)  # 90 ms of blur on a live camera
    assert not r.filter([Decoded("A")], 0.12)


def test_a_slow_decoder_takes_the_newest_frame_and_drops_stale_ones():
    frames = tagged(*([0] * 150))
    decoder = TagDecoder(delay=0.03)
    scanner = Scanner(ReplaySource(frames, fps=200), decoder, lambda c: None)
    scanner.start()
    assert scanner.wait(10)
    scanner.stop()
    s = scanner.stats()
    assert s.frames_captured == 150
    assert s.frames_dropped > 50  # stale frames are dropped, not queued
    assert s.frames_decoded + s.frames_dropped == 150
    assert s.lag_frames_max <= 10  # decoding starts from the newest frame, no backlog


def test_stats_report_rates_and_latency_while_running():
    scanner = Scanner(ReplaySource(tagged(*([0] * 400)), fps=100), TagDecoder(), lambda c: None)
    scanner.start()
    time.sleep(1.0)
    s = scanner.stats()
    scanner.stop()
    assert isinstance(s, ScanStats) and s.camera_ok and s.camera_error == ""
    assert 40 <= s.capture_fps <= 120  # paced at 100 fps; slack for a loaded test machine
    assert 40 <= s.decode_fps <= 120
    assert 0 <= s.latency_p95_ms < 50


class FlakyCamera(FrameSource):
    """Absent for the first ``absent`` opens, then delivers frames; fails once after ``fail_after`` frames."""

    name = "flaky"
    realtime = True

    def __init__(self, absent: int = 2, fail_after: int | None = None):
        self.absent, self.fail_after = absent, fail_after
        self.open_times: list[float] = []
        self.index = 0
        self.is_open = False

    def open(self):
        self.open_times.append(time.monotonic())
        if len(self.open_times) <= self.absent:
            raise CameraError("no camera on CSI port")
        self.is_open = True

    def read(self):
        time.sleep(0.005)
        self.index += 1
        if self.fail_after is not None and self.index == self.fail_after:
            raise CameraError("frame timeout")
        return Frame(tagged(0)[0], time.monotonic(), self.index)

    def close(self):
        self.is_open = False


def test_an_absent_camera_is_retried_with_backoff_and_reported_meanwhile():
    cam = FlakyCamera(absent=3)
    asked: list[float] = []  # the backoff the scanner waits before each reopening
    passes = threading.Semaphore(0)  # the test lets each wait pass when it has looked

    def pause(seconds: float) -> None:
        asked.append(seconds)
        passes.acquire()

    scanner = Scanner(cam, TagDecoder(), lambda c: None, backoff_min_s=0.05, backoff_max_s=0.15, pause=pause)
    scanner.start()
    assert wait_for(lambda: len(asked) == 1)  # the first open failed: the scanner waits
    down = scanner.stats()
    assert not down.camera_ok and "no camera" in down.camera_error and len(cam.open_times) == 1
    for _ in range(3):
        passes.release()
    seen = []  # the figures as they were when the condition held
    assert wait_for(lambda: seen.append(scanner.stats()) or seen[-1].camera_ok, 3)
    up = seen[-1]
    scanner.stop()
    assert up.camera_ok and up.camera_error == ""
    assert asked == [0.05, 0.1, 0.15]  # exponential backoff, capped at backoff_max_s
    assert len(cam.open_times) == 4
    assert not cam.is_open  # closed on stop


def test_a_camera_that_fails_while_running_is_reopened():
    cam = FlakyCamera(absent=0, fail_after=5)
    scanner = Scanner(cam, TagDecoder(), lambda c: None, backoff_min_s=0.05)
    scanner.start()
    assert wait_for(lambda: len(cam.open_times) == 2 and scanner.stats().frames_captured > 10, 5)
    s = scanner.stats()
    scanner.stop()
    assert len(cam.open_times) == 2 and s.camera_ok and s.frames_captured > 10


class HungCamera(FrameSource):
    """A driver that blocks forever inside read()."""

    name = "hung"

    def __init__(self):
        self.forever = threading.Event()

    def open(self):
        pass

    def read(self):
        self.forever.wait()
        return None

    def close(self):
        pass


def test_stop_returns_promptly_even_when_the_camera_hangs():
    cam = HungCamera()
    scanner = Scanner(cam, TagDecoder(), lambda c: None, stall_seconds=0.2)
    scanner.start()
    assert wait_for(lambda: not scanner.stats().camera_ok, 5)
    s = scanner.stats()
    t = time.monotonic()
    scanner.stop()
    assert time.monotonic() - t < 1.5
    assert not s.camera_ok and "no frames" in s.camera_error
    cam.forever.set()


def test_a_failing_decoder_or_callback_does_not_stop_scanning():
    class Broken:
        name = "broken"
        calls = 0

        def decode(self, gray):
            Broken.calls += 1
            if Broken.calls == 1:
                raise RuntimeError("boom")
            return [Decoded("HC1:OK")]

    def on_code(c):
        raise ValueError("pipeline bug")

    scanner = Scanner(ReplaySource(tagged(0, 0, 0)), Broken(), on_code)
    scanner.start()
    assert scanner.wait(5)
    scanner.stop()
    assert scanner.stats().frames_decoded == 3


def test_colour_frames_are_decoded_as_grey():
    seen = []
    img = np.zeros((8, 8, 3), np.uint8)
    img[0, 0] = (5, 5, 5)
    scanner = Scanner(ReplaySource([img]), TagDecoder(), seen.append)
    scanner.start()
    assert scanner.wait(5)
    scanner.stop()
    assert [c.text for c in seen] == ["code-5"]


def test_on_frame_gets_every_decoded_frame_with_its_codes():
    got = []
    scanner = Scanner(ReplaySource(tagged(0, 4)), TagDecoder(), lambda c: None,
                      on_frame=lambda f, d: got.append((f.index, [x.text for x in d])))
    scanner.start()
    assert scanner.wait(5)
    scanner.stop()
    assert got == [(1, []), (2, ["code-4"])]


def test_scanner_cannot_start_twice():
    scanner = Scanner(ReplaySource([]), TagDecoder(), lambda c: None)
    scanner.start()
    with pytest.raises(RuntimeError):
        scanner.start()
    scanner.stop()

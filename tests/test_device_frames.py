"""Frame sources: replay, folder, video file, Picamera2 (with a fake camera), none."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from helpers import wait_for
from device.frames import (CameraError, Frame, FolderSource, NullSource, OpenCVSource, Picamera2Source, ReplaySource,
                           open_source)


def grey(value: int, shape=(48, 64)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def read_all(source) -> list[Frame]:
    out = []
    with source:
        while (f := source.read()) is not None:
            out.append(f)
    return out


def test_replay_gives_frames_in_order_then_ends():
    frames = read_all(ReplaySource([grey(1), grey(2), grey(3)]))
    assert [int(f.image[0, 0]) for f in frames] == [1, 2, 3]
    assert [f.index for f in frames] == [1, 2, 3]
    assert all(b.captured_at >= a.captured_at for a, b in zip(frames, frames[1:]))


def test_replay_loops_forever_when_asked():
    with ReplaySource([grey(1), grey(2)], loop=True) as src:
        tags = [int(src.read().image[0, 0]) for _ in range(5)]
    assert tags == [1, 2, 1, 2, 1]


def test_replay_paces_frames_at_its_rate_and_is_interruptible():
    with ReplaySource([grey(0)] * 6, fps=50) as src:
        t = time.monotonic()
        for _ in range(6):
            src.read()
        assert 0.08 <= time.monotonic() - t < 0.5  # 5 intervals of 20 ms


def test_replay_fast_is_not_realtime_and_paced_is():
    assert ReplaySource([], fps=0).realtime is False
    assert ReplaySource([], fps=10).realtime is True


def test_folder_reads_images_in_name_order_as_grey_and_skips_broken_files(tmp_path):
    import cv2

    for name, value in (("b.png", 20), ("a.png", 10), ("c.jpg", 200)):
        cv2.imwrite(str(tmp_path / name), np.full((30, 40, 3), value, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = read_all(open_source("folder", str(tmp_path)))
    assert [f.image.ndim for f in frames] == [2, 2, 2]
    assert [int(f.image[0, 0]) for f in frames][:2] == [10, 20]
    assert abs(int(frames[2].image[0, 0]) - 200) < 5  # JPEG


def test_folder_that_is_missing_or_empty_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        FolderSource(str(tmp_path / "nope")).open()
    with pytest.raises(CameraError, match="no images"):
        FolderSource(str(tmp_path)).open()
    with pytest.raises(CameraError, match="path"):
        open_source("folder", "")


def test_video_file_replays_then_ends(tmp_path):
    import cv2

    path = tmp_path / "visitors.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for v in (30, 120, 220):
        writer.write(np.full((48, 64, 3), v, np.uint8))
    writer.release()
    src = open_source("opencv", str(path))
    assert isinstance(src, OpenCVSource) and not src.realtime
    frames = read_all(src)
    assert len(frames) == 3 and frames[0].image.shape == (48, 64, 3)
    assert [abs(int(f.image[0, 0, 0]) - v) < 10 for f, v in zip(frames, (30, 120, 220))] == [True] * 3


def test_missing_video_file_is_a_camera_error(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        open_source("opencv", str(tmp_path / "none.mp4")).open()


def test_unknown_source_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown frame source 'webcam'"):
        open_source("webcam")


def test_none_source_waits_until_closed():
    src = open_source("none")
    assert isinstance(src, NullSource)
    src.open()
    result = []
    t = threading.Thread(target=lambda: result.append(src.read()))
    t.start()
    t.join(0.05)  # returns early only if read() did not block: the failure this looks for
    assert t.is_alive()
    src.interrupt()
    t.join(1)
    assert result == [None]


# -- Picamera2 with a fake camera --------------------------------------------------


class FakeRequest:
    def __init__(self, cam, ts_ns):
        self.cam, self.ts_ns, self.released = cam, ts_ns, False

    def make_array(self, name):
        w, h = self.cam.config["lores"]["size"] if name == "lores" else self.cam.config["main"]["size"]
        if name == "lores":
            stride = w + 32  # the ISP pads rows; the Y plane is the first `h` rows of `w` pixels
            yuv = np.full((h * 3 // 2, stride), 77, np.uint8)
            yuv[:h, :w] = 200
            return yuv
        return np.zeros((h, w, 3), np.uint8)

    def get_metadata(self):
        return {"SensorTimestamp": self.ts_ns, "ExposureTime": 10000}

    def release(self):
        self.released = True
        self.cam.released += 1


class FakeJob:
    """picamera2.job.Job: ``get_result(timeout)`` raises TimeoutError when no frame comes."""

    def __init__(self, request):
        self.request = request

    def get_result(self, timeout=None):
        if self.request is None:
            time.sleep(timeout or 0)
            raise TimeoutError
        return self.request


class FakePicamera2:
    """Enough of picamera2.Picamera2 for the source: configuration, start, capture_request, close."""

    instances: list["FakePicamera2"] = []
    absent = False
    old_api = False  # picamera2 before capture_request(flush=)

    def __init__(self, camera_num=0):
        if FakePicamera2.absent:
            raise IndexError("list index out of range")  # what picamera2 raises with no camera
        self.camera_num = camera_num
        self.config = None
        self.started = self.closed = False
        self.flushes: list = []
        self.released = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, controls=None, **kw):
        return {"main": main, "lores": lores, "controls": controls}

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def capture_request(self, wait=None, signal_function=None, **kw):
        if FakePicamera2.old_api and kw:
            raise TypeError("capture_request() got an unexpected keyword argument 'flush'")
        self.flushes.append(kw.get("flush"))
        request = self.next_request()
        return FakeJob(request) if wait is False else request

    def next_request(self):
        return FakeRequest(self, time.monotonic_ns() - 5_000_000)

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.fixture
def fake_camera():
    FakePicamera2.instances, FakePicamera2.absent, FakePicamera2.old_api = [], False, False
    return FakePicamera2


def test_picamera2_decodes_the_lores_y_plane_and_flushes_old_frames(fake_camera):
    src = open_source("picamera2", width=640, height=480, fps=30, camera_class=fake_camera)
    with src:
        before = time.monotonic_ns()
        frame = src.read()
    cam = fake_camera.instances[0]
    assert cam.config["lores"] == {"size": (640, 480), "format": "YUV420"}
    assert cam.config["controls"]["FrameRate"] == 30
    assert frame.image.shape == (480, 640) and frame.image.dtype == np.uint8
    assert (frame.image == 200).all()  # Y only: no padding, no chroma rows
    assert frame.image.flags["C_CONTIGUOUS"]
    assert frame.preview is None
    # flush = a timestamp about one frame period ago: the newest frame, never a queued one
    assert before - 40_000_000 < cam.flushes[0] <= before
    assert abs(frame.captured_at - (time.monotonic() - 0.005)) < 0.05  # the sensor's timestamp
    assert cam.released == 1 and cam.closed


def test_picamera2_preview_comes_from_the_main_stream(fake_camera):
    with Picamera2Source(320, 240, preview=True, preview_size=(1280, 960), camera_class=fake_camera) as src:
        frame = src.read()
    assert frame.image.shape == (240, 320) and frame.preview.shape == (960, 1280, 3)


def test_picamera2_without_flush_support_still_reads(fake_camera):
    fake_camera.old_api = True
    with Picamera2Source(camera_class=fake_camera) as src:
        assert src.read() is not None and src.read() is not None
    assert fake_camera.instances[0].flushes == [None, None]


def test_picamera2_absent_camera_is_a_camera_error(fake_camera):
    fake_camera.absent = True
    with pytest.raises(CameraError, match="no camera 0"):
        Picamera2Source(camera_class=fake_camera).open()


def test_picamera2_not_installed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="python3-picamera2"):
        Picamera2Source().open()


def test_picamera2_rejects_odd_sizes_up_front():
    with pytest.raises(ValueError, match="even"):
        Picamera2Source(641, 480)


def test_picamera2_in_the_scanner_reports_codes(fake_camera):
    """The whole path on a fake Pi camera: lores Y plane -> cascade -> CodeSeen."""
    import segno

    from kiosk.door.decode import Scanner, default_decoder

    m = np.pad(np.array([list(r) for r in segno.make("HC1:PI", micro=False).matrix], np.uint8), 4)
    code = np.where(np.kron(m, np.ones((8, 8), np.uint8)) == 1, 0, 255).astype(np.uint8)

    class CodeRequest(FakeRequest):
        def make_array(self, name):
            yuv = np.full((480 * 3 // 2, 640), 128, np.uint8)
            yuv[100:100 + code.shape[0], 200:200 + code.shape[1]] = code
            return yuv

    class CodeCamera(fake_camera):
        def next_request(self):
            time.sleep(1 / 30)
            return CodeRequest(self, time.monotonic_ns())

    seen = []
    scanner = Scanner(Picamera2Source(camera_class=CodeCamera), default_decoder(), seen.append)
    scanner.start()
    wait_for(lambda: seen, timeout=3)
    time.sleep(0.2)  # frames go on coming: the same code in view is not scanned twice (a real-time window)
    scanner.stop()
    assert [c.text for c in seen] == ["HC1:PI"]  # one visitor, one scan


def test_picamera2_camera_number_comes_from_the_path(fake_camera):
    with open_source("picamera2", "1", camera_class=fake_camera) as src:
        src.read()
    assert fake_camera.instances[0].camera_num == 1


def test_picamera2_that_stops_delivering_is_a_camera_error_and_is_reopened(fake_camera):
    """A hung camera times out instead of blocking the capture thread; the scanner reopens it."""
    from kiosk.door.decode import Scanner
    from kiosk.door.decode.decoders import Decoded

    class HangsOnce(fake_camera):
        def next_request(self):
            if len(fake_camera.instances) == 1 and len(self.flushes) > 3:
                return None  # the first camera object hangs after three frames
            time.sleep(0.01)
            return super().next_request()

    class NoCodes:
        name = "none"

        def decode(self, gray) -> list[Decoded]:
            return []

    source = Picamera2Source(camera_class=HangsOnce, frame_timeout_s=0.1)
    scanner = Scanner(source, NoCodes(), lambda c: None, backoff_min_s=0.05)
    scanner.start()
    wait_for(lambda: len(fake_camera.instances) >= 2 and scanner.stats().frames_captured > 5, timeout=3)
    s = scanner.stats()
    scanner.stop()
    assert len(fake_camera.instances) == 2 and fake_camera.instances[0].closed
    assert s.camera_ok and s.frames_captured > 5

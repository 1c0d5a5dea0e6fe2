"""The cascade's budget: second looks only where they pay, never more than their share of time."""

from __future__ import annotations

import numpy as np
import pytest

import kiosk.door.decode.cascade as cascade_mod
from kiosk.testing.clock import FakeClock
from kiosk.door.decode.cascade import Cascade, Step, build_cascade
from kiosk.door.decode.decoders import Decoded


class FakeDecoder:
    def __init__(self, clock: FakeClock, cost: float, answer=(), located=False, name="fake"):
        self.clock, self.cost, self.answer, self.located, self.name = clock, cost, list(answer), located, name
        self.calls = 0

    def decode(self, gray):
        self.calls += 1
        self.clock.advance(self.cost)  # a fake thread-CPU clock: each decoder advances it by its cost
        return list(self.answer)


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock(0.0)
    monkeypatch.setattr(cascade_mod.time, "thread_time", c)
    return c


FRAME = np.zeros((48, 64), np.uint8)


def test_rescue_work_stays_within_its_share_on_frames_without_a_code(clock):
    first = FakeDecoder(clock, 0.010)
    steps = {"a": FakeDecoder(clock, 0.004), "b": FakeDecoder(clock, 0.012)}
    c = Cascade(first, steps, [Step("", "a"), Step("", "b")], share=0.5)
    for _ in range(1000):
        c.decode(FRAME)
    rescue = steps["a"].calls * 0.004 + steps["b"].calls * 0.012
    assert steps["a"].calls > 0 and steps["b"].calls > 0  # both steps do get their turn
    assert rescue <= 0.5 * 1000 * 0.010 + 0.012  # the share, plus at most one step's overrun


def test_a_code_the_first_stage_reads_costs_nothing_more(clock):
    first = FakeDecoder(clock, 0.010, answer=[Decoded("HC1:X")])
    step = FakeDecoder(clock, 0.001)
    c = Cascade(first, {"s": step}, [Step("", "s")], share=1.0)
    for _ in range(50):
        assert [d.text for d in c.decode(FRAME)] == ["HC1:X"]
    assert step.calls == 0


def test_a_located_but_unread_code_gets_a_second_look_at_once(clock):
    first = FakeDecoder(clock, 0.010, located=True)
    step = FakeDecoder(clock, 0.005, answer=[Decoded("HC1:Y")])
    c = Cascade(first, {"s": step}, [Step("", "s")], share=0.01)  # next to no budget
    assert [d.text for d in c.decode(FRAME)] == ["HC1:Y"]
    assert c.rescued["s"] == 1


def test_a_budget_cut_rescue_resumes_at_the_next_step_on_the_next_frame(clock):
    first = FakeDecoder(clock, 0.010)
    a, b = FakeDecoder(clock, 0.006), FakeDecoder(clock, 0.006, answer=[Decoded("late")])
    c = Cascade(first, {"a": a, "b": b}, [Step("", "a"), Step("", "b")], share=1.0)
    texts = []
    for _ in range(4):  # a code held in view: every frame the same
        texts += [d.text for d in c.decode(FRAME)]
    assert a.calls >= 1 and "late" in texts


def test_corners_from_a_resized_frame_map_back_to_frame_pixels():
    import segno

    m = np.pad(np.array([list(r) for r in segno.make("HC1:CORNERS", micro=False).matrix], np.uint8), 4)
    img = np.where(np.kron(m, np.ones((8, 8), np.uint8)) == 1, 0, 255).astype(np.uint8)
    direct = build_cascade(steps=()).decode(img)[0].corners
    c = build_cascade(steps=(Step("half", "zxing"),), share=100.0)
    halved = c._run(Step("half", "zxing"), img)[0].corners
    assert np.allclose(direct, halved, atol=4.0)


def test_missing_backends_are_left_out_with_a_warning(caplog):
    from kiosk.door.decode.decoders import BACKENDS, DecoderUnavailable

    def unavailable():
        raise DecoderUnavailable("libzbar0 not installed")

    saved = BACKENDS["zbar"]
    BACKENDS["zbar"] = unavailable
    try:
        c = build_cascade(steps=(Step("smooth", "zxing"), Step("", "zbar"), Step("half", "zbar")))
    finally:
        BACKENDS["zbar"] = saved
    assert [s.label for s in c.steps] == ["zxing+smooth"]
    assert "zbar left out" in caplog.text and caplog.text.count("left out") == 1


def test_opencv_without_aruco_is_kept_off_the_hot_path(monkeypatch):
    """On OpenCV 4.6 the classic detector can stall for hundreds of ms: the cascade leaves its step out."""
    import types

    import cv2

    from kiosk.door.decode.decoders import BACKENDS, OpenCVDecoder

    old_cv2 = types.SimpleNamespace(QRCodeDetector=cv2.QRCodeDetector, error=cv2.error, __version__="4.6.0")
    monkeypatch.setitem(BACKENDS, "opencv", lambda: OpenCVDecoder(cv2_module=old_cv2))
    c = build_cascade()
    assert c.steps and all(s.backend != "opencv" for s in c.steps)
    assert "opencv" not in c.backends


def test_a_still_image_gets_every_step_regardless_of_budget(clock):
    first = FakeDecoder(clock, 0.010)
    a, b = FakeDecoder(clock, 0.050), FakeDecoder(clock, 0.050, answer=[Decoded("still")])
    c = Cascade(first, {"a": a, "b": b}, [Step("", "a"), Step("", "b")], share=0.01)
    assert c.decode(FRAME) == []  # live: no budget for a 5x step yet
    assert [d.text for d in c.decode_still(FRAME)] == ["still"]

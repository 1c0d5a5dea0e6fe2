"""The decoder cascade: the fast backend on every frame, second looks only where they pay.

Most frames at a kiosk hold no code, and most codes are read by the first
backend, so the cascade's cost is close to that backend's. A frame it missed
gets a *rescue*: a sequence of (fix, backend) steps, e.g. zxing again on the
frame halved or after a median filter, OpenCV's detector, an upscaled frame. Rescues run

- at once, borrowing up to a few frames' worth of budget, when the first
  backend *located* a code but could not decode it, and
- otherwise only from a work budget that grows by ``share`` of the first
  backend's time on every frame: over time no more than that share is
  spent on second looks, which bounds the cost on frames without a code.

On a live camera a budget-limited rescue resumes at the next step on the next
frame, so a code held in view is tried with every fix within a few frames; a
still image (``kiosk decode``) gets them all at once (:meth:`Cascade.decode_still`).
The step order comes from ``scripts/bench_decode.py --rank`` (codes rescued
per millisecond on photos and phone-screen frames), see docs/performance.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.door.decode.decoders import Decoded, Decoder, LocatingDecoder

if TYPE_CHECKING:
    import numpy

    from kiosk.door.decode.preprocess import Preprocessor

# Scale of each fix's output relative to the frame, to map corners back.
_FIX_SCALE = {"half": 0.5, "double": 2.0}


@dataclass(frozen=True)
class Step:
    """One rescue attempt: ``backend`` on the frame after ``fix`` ('' = the frame as it is)."""

    fix: str
    backend: str

    @property
    def label(self) -> str:
        return f"{self.backend}+{self.fix}" if self.fix else self.backend


class Cascade:
    """A :class:`~kiosk.door.decode.decoders.Decoder` made of a first backend and budgeted rescue steps."""

    name = "cascade"

    def __init__(self, first: LocatingDecoder, backends: dict[str, Decoder], steps: list[Step], share: float = 0.2,
                 located_frames: float = 4.0, preprocessor: Preprocessor | None = None):
        if preprocessor is None and any(s.fix for s in steps):
            from kiosk.door.decode.preprocess import Preprocessor

            preprocessor = Preprocessor()
        self.first = first
        self.backends = backends
        self.steps = list(steps)
        self.share = share
        # A located code may borrow this many first-stage frame times ahead of the budget.
        self.located_frames = located_frames
        self._pre = preprocessor
        self._credit = 0.0  # seconds of rescue work we may still spend
        self._next = 0  # where an interrupted rescue resumes
        self._cost = [0.0] * len(self.steps)  # recent worst seconds per step, to spend only what the budget covers
        self.rescued: dict[str, int] = {s.label: 0 for s in self.steps}

    def decode(self, gray: numpy.ndarray) -> list[Decoded]:
        """Read the frame: the first backend, then rescue steps while the budget allows."""
        t0 = time.thread_time()
        found = self.first.decode(gray)
        spent = time.thread_time() - t0
        # Thread CPU time: the work done, not time lost to other processes.
        # The budget is a share of the time really spent, so it follows frame size and CPU speed;
        # the cap keeps a long idle spell from saving up a burst.
        self._credit = min(self._credit + self.share * spent, 20 * spent)
        if found or not self.steps:
            return found
        floor = -self.located_frames * spent if self.first.located else 0.0
        n = len(self.steps)
        for k in range(n):
            i = (self._next + k) % n
            # A step runs only when the budget covers what it cost last time, so the budget is
            # never overdrawn (except, within the debt limit, for a code that was located).
            # Before a step has run, guess three first-stage times (the measured range is 0.2x..5x).
            estimate = self._cost[i] if self._cost[i] else 3 * spent
            if self._credit - estimate < floor:
                self._next = i  # resume here on the next frame
                return []
            step = self.steps[i]
            t = time.thread_time()
            found = self._run(step, gray)
            cost = time.thread_time() - t
            self._credit -= cost
            # A slowly decaying maximum: frames vary, and underestimating a step overdraws the budget.
            self._cost[i] = max(cost, 0.9 * self._cost[i])
            if found:
                self.rescued[step.label] += 1
                self._next = 0  # a fresh code starts from the cheapest step
                return found
        self._next = 0
        return []

    def decode_still(self, gray: numpy.ndarray) -> list[Decoded]:
        """Read a still image: the same stages in the same order, every one if need be.

        A still has no next frame for a budget-cut rescue to resume on (``kiosk decode``), so
        this spends what the camera would spend over the few frames a visitor holds a code up.
        """
        found = self.first.decode(gray)
        for step in self.steps:
            if found:
                break
            found = self._run(step, gray)
        return found

    def _run(self, step: Step, gray: numpy.ndarray) -> list[Decoded]:
        image = self._pre.apply(step.fix, gray) if step.fix else gray
        found = self.backends[step.backend].decode(image)
        scale = _FIX_SCALE.get(step.fix)
        if scale and found:
            found = [Decoded(d.text, tuple((x / scale, y / scale) for x, y in d.corners) if d.corners else None)
                     for d in found]
        return found


# Greedy order from scripts/bench_decode.py --rank (most newly rescued codes per millisecond);
# see docs/performance.md, "Decoding". ZBar rescued nothing the zxing steps did not.
DEFAULT_STEPS = (
    Step("half", "zxing-invert"),
    Step("smooth", "zxing-invert"),
    Step("half", "opencv"),
    Step("double", "zxing"),
    Step("invert", "zxing"),
    Step("threshold", "zxing-invert"),
)


def build_cascade(steps=DEFAULT_STEPS, share: float = 0.9, backends: dict[str, Decoder] | None = None) -> Cascade:
    """The kiosk's cascade; steps whose backend is not installed here are left out (with a log line).

    The first stage is zxing without its inverted-code pass (half its cost); light-on-dark
    codes are the ``zxing+invert`` step's job.
    """
    import logging

    from kiosk.door.decode.decoders import BACKENDS, DecoderUnavailable, ZxingDecoder

    log = logging.getLogger(__name__)
    backends = dict(backends or {})
    first = backends.setdefault("zxing", ZxingDecoder(try_invert=False))
    missing: set[str] = set()
    usable = []
    for step in steps:
        if step.backend not in backends and step.backend not in missing:
            try:
                backend = BACKENDS[step.backend]()
            except DecoderUnavailable as exc:
                log.warning("decoder %s left out of the cascade: %s", step.backend, exc)
                missing.add(step.backend)
                continue
            if backend.name == "opencv":  # the classic detector: OpenCVDecoder names the Aruco one "opencv-aruco"
                # OpenCV < 4.8 (Bookworm's 4.6): the classic detector took up to ~1 s on one
                # 1280x720 frame in our benchmark; a stall like that has no place on the hot path.
                log.info("OpenCV has no QRCodeDetectorAruco: its rescue step is left out")
                missing.add(step.backend)
                continue
            backends[step.backend] = backend
        if step.backend in backends:
            usable.append(step)
    return Cascade(first, backends, usable, share=share)

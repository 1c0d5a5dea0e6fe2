"""One visitor, one scan: the same code in view is reported once until it leaves or re-arms.

A code *leaves the view* when it has not been read in ``gone_frames``
consecutive decoded frames and (live cameras only) for ``gone_seconds``: one
blurred frame is not a visitor leaving. A code that stays in view is
reported again after ``rearm_seconds`` (a visitor who is still waiting).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.door.decode.decoders import Decoded


@dataclass
class _InView:
    reported_at: float
    seen_at: float
    seen_frame: int


class Rearm:
    """Filters each decoded frame's codes down to the ones to report. Used by one thread."""

    def __init__(self, rearm_seconds: float = 3.0, gone_frames: int = 3, gone_seconds: float = 0.3, realtime: bool = True):
        self.rearm_seconds = rearm_seconds
        self.gone_frames = gone_frames
        # A replay read as fast as possible has no meaningful wall time between frames.
        self.gone_seconds = gone_seconds if realtime else 0.0
        self._frame = 0
        self._in_view: dict[str, _InView] = {}

    def filter(self, decoded: list[Decoded], at: float) -> list[Decoded]:
        """The codes of this frame (captured at monotonic time ``at``) that count as new scans."""
        self._frame += 1
        report = []
        for d in decoded:
            seen = self._in_view.get(d.text)
            if seen is None:
                self._in_view[d.text] = _InView(at, at, self._frame)
                report.append(d)
                continue
            if seen.seen_frame == self._frame:
                continue  # the same code twice in one frame
            if at - seen.reported_at >= self.rearm_seconds:
                seen.reported_at = at
                report.append(d)
            seen.seen_at, seen.seen_frame = at, self._frame
        for text in [t for t, s in self._in_view.items()
                     if self._frame - s.seen_frame >= self.gone_frames and at - s.seen_at >= self.gone_seconds]:
            del self._in_view[text]
        return report

    @property
    def in_view(self) -> list[str]:
        """Codes currently considered in view (already reported)."""
        return list(self._in_view)

"""Cheap grey-image fixes that let a decoder read a code it just missed.

Each fix targets one way a camera frame goes wrong: ``smooth`` (a 3x3
median) removes the moiré of a phone's pixel grid and sensor noise in dim
light; ``half`` (area downscale) averages moiré away on large codes; ``double``
upscales small codes so every module spans a few pixels; ``clahe``
equalises contrast locally (low light, glare washing out half the code);
``invert`` turns light-on-dark (dark-mode) codes around; ``threshold``
(adaptive) binarises unevenly lit frames for decoders with a global threshold.

A :class:`Preprocessor` keeps its output buffers between frames (same frame
size, no new allocation per frame on the hot path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy

FIXES = ("smooth", "half", "double", "clahe", "invert", "threshold")


class Preprocessor:
    """Applies named fixes into reused buffers. Not thread-safe: one per decode thread."""

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        self._clahe_op = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self._buffers: dict[tuple, numpy.ndarray] = {}
        self._fixes: dict[str, Callable] = {name: getattr(self, f"_{name}") for name in FIXES}

    def apply(self, name: str, gray: numpy.ndarray) -> numpy.ndarray:
        """``gray`` with the fix ``name`` applied (a buffer owned by this object, valid until the next call)."""
        try:
            return self._fixes[name](gray)
        except KeyError:
            raise ValueError(f"unknown fix {name!r} (known: {', '.join(FIXES)})") from None

    def _buffer(self, name: str, shape: tuple[int, ...]) -> numpy.ndarray:
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None:
            import numpy as np

            if len(self._buffers) > 32:  # frame size changed many times: forget old sizes
                self._buffers.clear()
            buf = self._buffers[key] = np.empty(shape, np.uint8)
        return buf

    def _smooth(self, gray):
        return self._cv2.medianBlur(gray, 3, dst=self._buffer("smooth", gray.shape))

    def _half(self, gray):
        h, w = gray.shape
        return self._cv2.resize(gray, (w // 2, h // 2), dst=self._buffer("half", (h // 2, w // 2)),
                                interpolation=self._cv2.INTER_AREA)

    def _double(self, gray):
        h, w = gray.shape
        return self._cv2.resize(gray, (w * 2, h * 2), dst=self._buffer("double", (h * 2, w * 2)),
                                interpolation=self._cv2.INTER_LINEAR)

    def _clahe(self, gray):
        return self._clahe_op.apply(gray, dst=self._buffer("clahe", gray.shape))

    def _invert(self, gray):
        return self._cv2.bitwise_not(gray, dst=self._buffer("invert", gray.shape))

    def _threshold(self, gray):
        cv2 = self._cv2
        # Block about 1/20 of the short side: larger than a module, smaller than the code.
        block = max(15, (min(gray.shape) // 20) | 1)
        return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 5,
                                     dst=self._buffer("threshold", gray.shape))

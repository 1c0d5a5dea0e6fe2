"""A folder of images, replayed in name order (``[camera] source = "folder"``); images read as grey."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from device.frames.base import CameraError, Frame, path_expand
from device.frames.replay import ReplaySource

if TYPE_CHECKING:
    import numpy

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


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

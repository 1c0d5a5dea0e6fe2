"""``kiosk decode [--json] IMAGE...``: read QR codes from image files with the live pipeline's cascade.

Each file is read as a still (:meth:`~kiosk.door.decode.cascade.Cascade.decode_still`): the cascade's
stages in the same order, all of them if need be, as the camera gets them over a few frames.

One line per image. With ``--json``: ``{"file": ..., "codes": [text, ...], "ms": decode milliseconds}``,
or ``{"file": ..., "codes": [], "ms": 0.0, "error": ...}`` for a file that cannot be read
as an image. Without it: the file name and each code, tab-separated. Exit 0
(reading no code is an answer, not a failure).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.door.decode.cascade import Cascade


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")


def decode_file(path: str, decoder: Cascade) -> dict:
    """The result line for one image file."""
    from device.frames import load_gray

    try:
        image = load_gray(path)
    except OSError as exc:
        return {"file": path, "codes": [], "ms": 0.0, "error": exc.strerror or str(exc)}
    if image is None:
        return {"file": path, "codes": [], "ms": 0.0, "error": "not an image"}
    # A file is a still: every rescue step may run (the live camera spreads them over frames).
    t = time.perf_counter()
    found = decoder.decode_still(image)
    ms = (time.perf_counter() - t) * 1000.0
    return {"file": path, "codes": [d.text for d in found], "ms": round(ms, 2)}


def run(args) -> int:
    from kiosk.door.decode.cascade import build_cascade

    decoder = build_cascade()  # default_decoder()'s, as a Cascade: a still may take every rescue step
    for path in args.images:
        result = decode_file(path, decoder)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        elif "error" in result:
            print(f"{path}\terror: {result['error']}", flush=True)
        else:
            print("\t".join([path, *result["codes"]]) if result["codes"] else f"{path}\t(no code)", flush=True)
    sys.stdout.flush()
    return 0

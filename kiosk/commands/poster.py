"""``kiosk poster --config F --out FILE.pdf [--size A4|A5]``: print the venue's QR poster.

The venue code exactly as the kiosk's screen shows it, with the venue's name,
address, short instructions in Vietnamese and English and the venue id for
manual entry (see :mod:`kiosk.issuing.poster`). For the door, for the inspection
(how the venue code is posted), and for the hours a kiosk is off.
"""

from __future__ import annotations

import os

from kiosk import config


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="kiosk config ([venue] name, address, id, qr_content)")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="PDF file to write")
    p.add_argument("--size", choices=("A4", "A5"), default="A4", help="paper size (default: A4)")


def run(args) -> int:
    from kiosk.cli import UsageError
    from kiosk.issuing.poster import PosterError, make_poster

    cfg = config.load(args.config)
    if not args.out.lower().endswith(".pdf"):
        raise UsageError(f"--out must name a .pdf file, got {args.out!r}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"folder {out_dir!r} does not exist")
    try:
        facts = make_poster(cfg.venue, args.out, args.size, font=cfg.screen.font)
    except PosterError as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.out}: {facts.paper} poster of venue {cfg.venue.id}, QR {facts.qr_side_mm:.0f} mm wide "
          f"({facts.modules} modules of {facts.module_mm:.1f} mm + quiet zone), font {facts.font}")
    return 0

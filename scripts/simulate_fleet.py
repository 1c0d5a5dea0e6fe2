#!/usr/bin/env python3
"""Simulate a fleet of kiosks against a broker: same as ``kiosk simulate`` (see --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["simulate", *sys.argv[1:]]))

"""Hardware layer: camera frames, code scanners, signals and the display, behind small interfaces."""

"""Liveness: is the camera or the decoder hung inside its driver or library?

A camera that reports itself healthy but delivered no frame for ``stuck_s``,
or a decoder that finished none while frames keep coming, is hung where no
exception will ever come from: the supervisor then stops feeding the systemd
watchdog so that the service is restarted. A camera that reports an error is
reopened by the scanner instead (with backoff), and the kiosk keeps serving
USB scanners meanwhile.
"""

from __future__ import annotations

import logging

from kiosk.door.decode.stats import ScanStats

log = logging.getLogger(__name__)

# A camera or a decoder silent for this long while it should not be is hung (see above).
CAMERA_STUCK_SECONDS = 20.0


class Liveness:
    """Decides, from the scan figures once a second, whether the camera or the decoder is hung."""

    def __init__(self, started: float, stuck_s: float = CAMERA_STUCK_SECONDS):
        self.stuck_s = stuck_s
        self._camera_alive = self._decoder_alive = started
        self._decoded_seen = 0
        self._logged = False
        #: Why the kiosk is hung ("" while it is not): the watchdog pings stop.
        self.stuck = ""

    def update(self, now: float, stats: ScanStats, present: bool, exhausted: bool) -> str:
        """Take this second's figures; returns :attr:`stuck`.

        ``present``: a camera is configured; ``exhausted``: a replay has ended (not a hang).
        """
        if not present or not stats.camera_ok or stats.capture_fps > 0 or exhausted:
            self._camera_alive = now
        # The decoder is stuck when frames keep coming but none has been decoded for a while
        # (a decoder library hanging on one frame): nothing else would ever notice.
        if not present or stats.frames_decoded != self._decoded_seen or stats.capture_fps == 0:
            self._decoder_alive = now
            self._decoded_seen = stats.frames_decoded
        self.stuck = ("camera delivered no frame" if now - self._camera_alive > self.stuck_s else
                      "decoder finished no frame" if now - self._decoder_alive > self.stuck_s else "")
        if self.stuck and not self._logged:
            log.error("%s for over %.0f s; letting the watchdog restart the kiosk", self.stuck, self.stuck_s)
            self._logged = True
        return self.stuck

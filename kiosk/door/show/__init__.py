"""Show stage: the kiosk's pygame screens (idle venue QR, live preview, verdict, guard status bar).

pygame is imported only when a :class:`Screen` is built, so importing this
package (for :class:`KioskStatus`) costs nothing on a headless kiosk.
"""

import os

# pygame greets on stdout when imported; `kiosk screenshot` output and the journal stay clean.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from kiosk.door.show.names import mask_name, shown_name  # noqa: E402
from kiosk.door.show.status import KioskStatus  # noqa: E402

__all__ = ["KioskStatus", "Screen", "mask_name", "shown_name"]


def __getattr__(name: str):
    if name == "Screen":  # pulls in pygame lazily
        from kiosk.door.show.screen import Screen

        return Screen
    raise AttributeError(name)

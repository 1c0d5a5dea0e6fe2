"""The door: what ``kiosk run`` imports, and nothing else.

A visitor's code takes the stages in this order, one subpackage each:

    decode/   frames -> QR text (the cascade of decoders, the scan threads, re-arm)
    verify/   text -> CodeCheck (one plug-in per code format, the Verifier)
    decide/   CodeCheck -> Checkin (venue policy, duplicate window, the door rule)
    record/   the SQLite ledger: committed before anyone is told "accepted"
    show/     the screen: idle venue QR, verdicts, the guard's bar and screen
    publish/  MQTT telemetry from the ledger's outbox, signed with the device key
    remote/   the centre's signed commands and trust bundles, on the control thread

and around them the kiosk itself: :mod:`~kiosk.door.stages` (the typed seams and
their null objects), :mod:`~kiosk.door.intake`, :mod:`~kiosk.door.flow` (one
visitor), :mod:`~kiosk.door.control`, :mod:`~kiosk.door.supervisor` (and its
jobs), :mod:`~kiosk.door.systemd`, :mod:`~kiosk.door.kiosk` (the loop) and
:mod:`~kiosk.door.assembly` (every stage built from its config section).

The door imports only :mod:`kiosk.wire`, :mod:`kiosk.trust`, :mod:`kiosk.config`,
:mod:`kiosk.errors`, :mod:`kiosk.secrets` and :mod:`device` (pyproject.toml's
import contracts, tests/test_import_graph.py). Hardware only through ``device/``.
"""

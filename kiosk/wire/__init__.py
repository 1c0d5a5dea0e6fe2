"""The wire: what the door, the centre and the tools say to each other, defined once.

* :mod:`kiosk.wire.topics`: the MQTT topics (``checkin/v1/...``), docs/mqtt.md;
* :mod:`kiosk.wire.reasons`: every stable word (verdict reasons, refusals of signed messages and bundles);
* :mod:`kiosk.wire.signing`: the signed JSON envelope and its key rings;
* :mod:`kiosk.wire.commands`: the centre's command names and the words a kiosk answers on ``cmd-result``;
* :mod:`kiosk.wire.formats`: the names of the code formats, as events carry them;
* :mod:`kiosk.wire.registry`: the fleet registry file (which kiosk signs with which key);
* :mod:`kiosk.wire.trace`: contact tracing's requests and answers (the kiosk's responder, the authority);
* :mod:`kiosk.wire.broker`: broker URLs and the MQTT client every side connects with.

The wire imports nothing of the kiosk but :mod:`kiosk.errors` and :mod:`kiosk.secrets`
(tests/test_import_graph.py): what it defines means the same on every side.
"""

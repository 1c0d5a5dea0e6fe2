"""The centre's commands to a kiosk (``.../cmd/{name}``) and the words a kiosk answers on ``.../cmd-result``.

A command name enables an action in ``[mqtt] commands``; the centre's ``kiosk command``
sends them and the kiosk's command gate (:mod:`kiosk.door.remote.gate`) acts on them.
Each answer word is stable once published: the centre counts by it.
"""

from __future__ import annotations

RELOAD_TRUST = "reload-trust"
NOTICE = "notice"
UPDATE = "update"  # a release for the root updater (kiosk.wire.update, kiosk-update.path)
NAMES = (RELOAD_TRUST, NOTICE, UPDATE)  # the commands a kiosk knows

# The answer's status.
OK = "ok"
REFUSED = "refused"

# Refusals by the gate itself (the envelope's refusals, kiosk.wire.reasons, are passed on as they are).
WRONG_TOPIC = "wrong-topic"
UNKNOWN_COMMAND = "unknown-command"
NOT_ENABLED = "not-enabled"
NAME_MISMATCH = "name-mismatch"
STATE_UNWRITABLE = "state-unwritable"
BAD_BODY = "bad-body"
RELOAD_FAILED = "reload-failed"
FAILED = "failed"  # the action raised: a bug, logged with its traceback

# Outcomes of accepted commands.
RELOADED = "reloaded"
COALESCED = "coalesced"
SHOWN = "shown"
CLEARED = "cleared"
QUEUED = "queued"  # update: handed to the root updater


def signed(name: str, body, site: str, device: str, key, expires_in: float | None = None) -> tuple[str, bytes, str]:
    """``(topic, signed message, command id)`` of one command to one kiosk, signed with the centre's ``key``."""
    import uuid

    from kiosk.wire import signing
    from kiosk.wire.topics import Topics

    topic = Topics(site, device).cmd(name)
    command_id = uuid.uuid4().hex
    payload = signing.stamp({"id": command_id, "name": name, "body": body}, ttl_s=expires_in)
    return topic, signing.sign_bytes(payload, topic, key), command_id

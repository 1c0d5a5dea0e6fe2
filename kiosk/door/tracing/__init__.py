"""Contact tracing, the kiosk's side: answer the health authority's signed trace requests.

:class:`~kiosk.door.tracing.responder.TraceResponder` checks a request and answers it
from the visit log, sealed to the authority; :class:`~kiosk.door.tracing.service.TraceService`
runs it behind the kiosk's publisher. The authority's own tool is
:mod:`kiosk.authority` (never imported by the firmware). See docs/tracing.md.
"""

from __future__ import annotations


from kiosk.door.tracing.responder import TraceResponder

__all__ = ["TraceResponder", "responder_from_config"]


def responder_from_config(cfg, device_key=None, pseudonyms=None) -> TraceResponder:
    """The responder the config describes: ``[tracing]``, the device key, the pseudonym key and the ledger.

    The ledger must have been opened once (it migrates the file). ``device_key`` and ``pseudonyms``
    default to the ones in the config (the running kiosk passes the ones it already loaded).
    """
    from kiosk.wire import signing
    from kiosk.door.record.visits import VisitArchive
    from kiosk.trust.pseudonym import Pseudonyms

    if cfg.tracing.authority_key:
        authority = signing.KeyRing.load([cfg.resolve(cfg.tracing.authority_key)], owner="health-authority")
    else:
        authority = signing.KeyRing()  # no authority provisioned: every request is refused (unknown-key)
    if device_key is None:
        ref = cfg.device.key_file or str(cfg.state_dir / "device-key.pem")
        device_key = signing.load_private_key(ref, cfg.base_dir)
    pseudonyms = pseudonyms or Pseudonyms.load(cfg.ledger.pseudonym_key_file, state_dir=cfg.state_dir,
                                               resolve=cfg.resolve, base=cfg.base_dir)
    v = cfg.venue
    venue = {"id": v.id, "name": v.name, "address": v.address, "province": v.province, "district": v.district,
             "ward": v.ward, "district_code": v.district_code, "ward_code": v.ward_code}
    return TraceResponder(site=cfg.device.site, device=cfg.device.id, venue=venue, device_key=device_key,
                          authority=authority, archive=VisitArchive(cfg.ledger_path), pseudonymize=pseudonyms.of,
                          visit_log=cfg.ledger.visit_log, fields=cfg.ledger.visit_log_fields,
                          max_age_s=cfg.tracing.request_max_age_seconds)

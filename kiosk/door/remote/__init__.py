"""The centre's reach into a running kiosk: its signed commands (:mod:`.gate`) and trust bundles (:mod:`.install`)."""

"""The centre: what the city sees of its kiosks (``kiosk centre``, ``kiosk monitor``).

A tool, not firmware: no module the kiosk runs imports this package.
Data flow: :mod:`~kiosk.centre.watch` (MQTT, persistent session) ->
:mod:`~kiosk.centre.ingest` (signatures against :mod:`~kiosk.centre.registry`, claims against
:mod:`~kiosk.centre.plausible`, batches) ->
:mod:`~kiosk.centre.store` (SQLite or PostgreSQL, idempotent upserts) ->
:mod:`~kiosk.centre.queries` (the one query layer) -> :mod:`~kiosk.centre.web` (pages and
``/api/v1/``), :mod:`~kiosk.centre.report` (the terminal view) and the CSV exports.
:mod:`~kiosk.centre.admin_units` reads the province's districts and wards (``kiosk centre user add
--district`` checks against them); the simulated city is with the fakes, :mod:`kiosk.testing.city`.
Running it (docs/operations.md): :mod:`~kiosk.centre.migrations` (the store's numbered schema),
:mod:`~kiosk.centre.backup` (backups that restore), :mod:`~kiosk.centre.metrics` (Prometheus),
:mod:`~kiosk.centre.health` (``/healthz``, ``/readyz``), :mod:`~kiosk.centre.versions` (the fleet's software).
"""

"""The dashboard and its JSON twin: Starlette pages and ``/api/v1/`` over the one query layer.

Every page has an API twin built from the same :class:`~kiosk.centre.queries.Centre` call
(Datasette's habit), so the browser tests read the page and the API tests read JSON, and both
read the same figures. Every route but ``/login``, ``/static`` and ``/api/v1/openapi.json`` needs
a session; :mod:`kiosk.centre.access` holds each account to its role and districts on pages and API
alike. Pages refresh their figures in place by polling their API twin (``static/centre.js``);
every asset is served from here, so the dashboard works with no internet.

Modules: :mod:`~.routes` (the route table: paths, parameters, answers), :mod:`~.views` (what each
route answers), :mod:`~.dashboard` (the wrapper every route goes through), :mod:`~.auth` (login,
logout, language), :mod:`~.security` (headers, body caps, client address, origins),
:mod:`~.params`, :mod:`~.exports` (CSV), :mod:`~.openapi`, :mod:`~.app` (:func:`create_app`).
"""

from kiosk.centre.web.app import create_app

__all__ = ["create_app"]

"""The web's usual defences, apart from the routes: headers, body caps, the client's address, origins.

* :class:`SecurityHeaders`: every response gets a Content-Security-Policy with no inline script
  or style (the pages' script and styles are files under ``/static``), ``frame-ancestors 'none'``,
  ``Referrer-Policy: same-origin``, ``X-Content-Type-Options: nosniff`` and friends.
* :class:`BodyLimit`: a request body larger than the cap is answered 413 before it is read: a
  ``Content-Length`` over the cap at once, a streamed (chunked) body as soon as the bytes counted
  pass it. Nothing bigger than the cap is ever held in memory.
* :func:`client_address`: the socket's peer, unless that peer is a ``--trusted-proxy``; then the
  right-most address of ``X-Forwarded-For`` that is not a trusted proxy (what the last trusted hop
  saw). The server itself never rewrites the peer from headers (uvicorn runs with
  ``proxy_headers=False``), so a local client cannot pose as another address.
* :func:`same_origin`: a state-changing request must come from the dashboard's own pages
  (``Origin``, else ``Referer``, equal to the host the request was sent to).
* :func:`safe_path`: a redirect target from a form or query is a path of this site, or ``/``.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# A chart is an SVG document: its own <style> only, never a script (it is shown as an <img>).
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response (a route's own CSP is kept)."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.extra = HEADERS + (((b"strict-transport-security", b"max-age=31536000"),) if hsts else ())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in have:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers.extend(h for h in self.extra if h[0] not in have)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """ASGI middleware: request bodies over ``max_bytes`` are answered 413 and never read whole."""

    def __init__(self, app, max_bytes: int = 64 * 1024, larger: tuple = ()):
        self.app = app
        self.max_bytes = max_bytes
        # (compiled path pattern, cap, sentence): routes that take more (a photo), with their own 413 sentence
        self.larger = larger

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap, too_large = self.max_bytes, f"request body: at most {self.max_bytes} bytes"
        for pattern, bytes_, sentence in self.larger:
            if pattern.fullmatch(scope.get("path", "")):
                cap, too_large = bytes_, sentence
        length = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    return await _plain(send, 400, "Content-Length: not a number")
        if length is not None and length > cap:
            return await _plain(send, 413, too_large)
        counted = 0
        started = False

        async def counting_receive():
            nonlocal counted
            message = await receive()
            if message["type"] == "http.request":
                counted += len(message.get("body", b""))
                if counted > cap:
                    raise _TooLarge()
            return message

        async def watching_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            if not started:
                await _plain(send, 413, too_large)


class _TooLarge(Exception):
    pass


async def _plain(send, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# -- who is asking ------------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values) -> list[Network]:
    """``--trusted-proxy`` values (addresses or networks); raises ValueError naming the bad one."""
    out = []
    for v in values or ():
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--trusted-proxy {v!r}: not an IP address or network") from None
    return out


def _ip(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(ip, networks: list[Network]) -> bool:
    return ip is not None and any(ip in n for n in networks)


def client_address(scope, networks: list[Network]) -> str:
    """The client's address as this centre can know it (see the module's docstring)."""
    peer = (scope.get("client") or ("",))[0] or ""
    if not networks or not _trusted(_ip(peer), networks):
        return peer
    hops = [h.strip() for k, v in scope.get("headers", []) if k == b"x-forwarded-for"
            for h in v.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return hop[:64]  # not an address: what the hop before the trusted proxies said
        if not _trusted(ip, networks):
            return str(ip)
    return str(_ip(hops[0])) if hops else peer


def request_host(request, networks: list[Network]) -> str:
    """The host the browser sent the request to (``X-Forwarded-Host`` only from a trusted proxy)."""
    if networks and _trusted(_ip(request.client.host if request.client else ""), networks):
        fwd = request.headers.get("x-forwarded-host")
        if fwd:
            return fwd.split(",")[-1].strip().lower()
    return (request.headers.get("host") or "").lower()


def same_origin(request, networks: list[Network]) -> bool:
    """Whether a state-changing request comes from this site's pages.

    ``Origin`` decides when present (browsers send it with every POST; ``null`` is refused);
    else ``Referer``; a request with neither is no browser's cross-site request and is left to
    the CSRF token.
    """
    host = request_host(request, networks)
    origin = request.headers.get("origin")
    if origin is not None:
        return origin != "null" and urllib.parse.urlsplit(origin).netloc.lower() == host
    referer = request.headers.get("referer")
    if referer:
        return urllib.parse.urlsplit(referer).netloc.lower() == host
    return True


def safe_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (``/...``, not ``//host`` or ``/\\host``), else ``default``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 32 or ord(c) == 127 or c == "\\" for c in target) or len(target) > 2000:
        return default
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target

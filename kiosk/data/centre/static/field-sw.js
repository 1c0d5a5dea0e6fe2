// The inspector's pages for the day, kept on the phone: every page and file under /field/ and /static/ is
// fetched from the network when there is one (and kept), and answered from what was kept when there is not.
// Posts (visits, photos) are never touched here: the page's outbox (field.js) keeps and resends them.
"use strict";
var CACHE = "field-pages";
var SHELL = ["/field/day", "/static/field.js", "/static/field.css"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("fetch", function (event) {
  var req = event.request;
  var url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin ||
      !(url.pathname.indexOf("/field/") === 0 || url.pathname.indexOf("/static/") === 0)) { return; }
  event.respondWith(fetch(req).then(function (r) {
    if (r.ok && !r.redirected) {
      var copy = r.clone();
      caches.open(CACHE).then(function (c) { c.put(req, copy); });
    }
    return r;
  }, function () {
    return caches.match(req, {ignoreVary: true}).then(function (hit) {
      return hit || caches.match(url.pathname, {ignoreVary: true}).then(function (again) {
        return again || new Response("offline", {status: 503, headers: {"Content-Type": "text/plain"}});
      });
    });
  }));
});

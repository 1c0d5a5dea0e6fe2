// Live refresh without reloading: poll the page's API twin, update every figure in place, reload the charts.
(function () {
  "use strict";
  var body = document.body;
  var api = body.getAttribute("data-api");
  var every = parseFloat(body.getAttribute("data-refresh") || "10") * 1000;

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }
  function duration(s) {
    if (s === "" || s === null || isNaN(s)) { return "—"; }
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m";
  }
  function localTime(iso) {
    if (!iso || iso === "—") { return "—"; }
    var t = new Date(iso), lang = document.documentElement.lang === "vi" ? "vi-VN" : "en-GB";
    if (isNaN(t)) { return iso; }
    // The city's clock (the centre's --timezone), whatever the browser's: the figures' day is the city's day.
    try { return t.toLocaleString(lang, {timeZone: document.documentElement.getAttribute("data-tz") || undefined}); }
    catch (e) { return t.toLocaleString(lang); }
  }
  // Logging out from any page forgets the inspector's day kept on this phone (the field pages hold the
  // unannounced visit list); the outbox in IndexedDB stays: a visit not yet sent goes after the next login.
  var logout = document.getElementById("logout-form");
  if (logout && window.caches) {
    logout.addEventListener("submit", function (ev) {
      if (logout.getAttribute("data-forgotten")) { return; }
      ev.preventDefault();
      caches["delete"]("field-pages").then(null, function () { return false; }).then(function () {
        logout.setAttribute("data-forgotten", "1");
        logout.submit();
      });
    });
  }
  function render() {
    document.querySelectorAll(".dur").forEach(function (el) {
      el.textContent = duration(parseFloat(el.getAttribute("data-seconds")));
    });
    document.querySelectorAll(".time, [data-f=generated]").forEach(function (el) {
      if (!el.hasAttribute("data-iso")) { el.setAttribute("data-iso", el.textContent); }
      el.textContent = localTime(el.getAttribute("data-iso"));
    });
  }
  function refresh() {
    fetch(api, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (r.status === 401) { location.href = "/login"; } return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        document.querySelectorAll("[data-f]").forEach(function (el) {
          var v = get(data, el.getAttribute("data-f"));
          if (v === undefined) { return; }
          if (el.classList.contains("time") || el.getAttribute("data-f") === "generated") {
            el.setAttribute("data-iso", v === null ? "—" : v);
          } else { el.textContent = v === null ? "—" : v; }
        });
        document.querySelectorAll("img.live").forEach(function (img) {
          img.src = img.src.replace(/([?&])t=\d+/, "$1").replace(/[?&]$/, "") +
            (img.src.indexOf("?") < 0 ? "?" : "&") + "t=" + Date.now();
        });
        body.setAttribute("data-refreshed", String(Date.now()));
        render();
      })
      .catch(function () { /* the centre restarts: try again at the next tick */ });
  }
  render();
  if (api && every > 0) { setInterval(refresh, every); }
})();

// The inspector's phone: drafts that survive a reload, an outbox that keeps visits (and their photos) until
// the centre has them, and a service worker that keeps the day's pages for when the network is gone.
// Nothing typed is lost: the draft is saved on every change; a saved visit leaves the outbox only when the
// centre answered it (a visit resent after a lost answer changes nothing: its id is made here, once).
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.getAttribute("data-csrf");
  var DB = "kiosk-field", OUTBOX = "outbox", DRAFTS = "drafts";
  var flushing = false;

  // -- IndexedDB: the outbox (visits with their photo) and the drafts' photos ---------------------------
  function db() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open(DB, 1);
      open.onupgradeneeded = function () {
        open.result.createObjectStore(OUTBOX, {keyPath: "visit_id"});
        open.result.createObjectStore(DRAFTS);
      };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }
  function tx(store, mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var t = d.transaction(store, mode), result;
        t.oncomplete = function () { resolve(result); };
        t.onerror = function () { reject(t.error); };
        fn(t.objectStore(store), function (r) { result = r; });
      });
    });
  }
  function all(store) {
    return tx(store, "readonly", function (s, done) {
      var req = s.getAll(); req.onsuccess = function () { done(req.result); };
    });
  }
  function put(store, value, key) {
    return tx(store, "readwrite", function (s) { if (key === undefined) { s.put(value); } else { s.put(value, key); } });
  }
  function del(store, key) { return tx(store, "readwrite", function (s) { s["delete"](key); }); }
  function get(store, key) {
    return tx(store, "readonly", function (s, done) {
      var req = s.get(key); req.onsuccess = function () { done(req.result); };
    });
  }

  function newId() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);  // works outside secure contexts too, unlike randomUUID
    return "v-" + Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  // -- the banner: how many visits wait, and whether the network is there ------------------------------
  function show() {
    var net = document.getElementById("net");
    if (net) { net.hidden = navigator.onLine; }
    return all(OUTBOX).then(function (items) {
      var box = document.getElementById("outbox");
      if (!box) { return; }
      box.hidden = items.length === 0;
      document.getElementById("outbox-n").textContent = String(items.length);
      var login = items.some(function (i) { return i.error === "login"; });
      document.getElementById("outbox-text").textContent = box.getAttribute(login ? "data-login" : "data-waiting");
      body.setAttribute("data-outbox", String(items.length));
      items.forEach(function (i) {
        document.querySelectorAll("li.visit").forEach(function (li) {
          if (li.getAttribute("data-venue") === i.fields.venue_id &&
              li.getAttribute("data-campaign") === i.fields.campaign_id) {
            li.querySelector(".state.local").hidden = false;
          }
        });
      });
    });
  }

  // -- sending: the visit, then its photo; an item leaves the outbox once both are answered ----------------
  function post(url, bodyData, type) {
    var headers = {"X-CSRF-Token": csrf};
    if (type) { headers["Content-Type"] = type; }
    return fetch(url, {method: "POST", credentials: "same-origin", headers: headers, body: bodyData});
  }
  function sendOne(item) {
    var step = item.sent ? Promise.resolve(null) :
      post("/api/v1/visits", new URLSearchParams(item.fields).toString(), "application/x-www-form-urlencoded");
    return step.then(function (r) {
      if (r && !r.ok) { return r; }
      if (r) { item.sent = true; }
      if (!item.photo) { return {ok: true}; }
      return put(OUTBOX, item).then(function () {
        return post("/api/v1/visits/" + encodeURIComponent(item.visit_id) + "/photo", item.photo, item.photo.type || "image/jpeg");
      });
    }).then(function (r) {
      if (r.ok) { return del(OUTBOX, item.visit_id).then(function () { return "sent"; }); }
      if (r.status === 401 || r.status === 403) {
        item.error = "login";  // a new session gives a new token: the visit waits for the inspector
        return put(OUTBOX, item).then(function () { return "kept"; });
      }
      return r.json().then(function (j) {
        item.error = (j && j.error) || String(r.status);
        if (item.sent && r.status >= 400 && r.status < 500) {
          // The visit is in; only its photo was refused (too big, not an image, another photo checked already):
          // sending it again would be refused again, and the item would wait in the outbox for ever.
          return del(OUTBOX, item.visit_id).then(function () { return "sent"; });
        }
        return put(OUTBOX, item).then(function () { return "refused"; });
      }, function () { return "kept"; });
    });
  }
  function flush() {
    if (flushing) { return Promise.resolve(); }
    flushing = true;
    return all(OUTBOX).then(function (items) {
      var chain = Promise.resolve();
      var stop = false;
      // A visit goes out in the session of the inspector who made it: on a phone passed to a colleague, it
      // waits for its inspector's next login rather than being recorded as the colleague's visit.
      var me = body.getAttribute("data-inspector");
      items = items.filter(function (i) { return !i.inspector || i.inspector === me; });
      items.sort(function (a, b) { return a.fields.at - b.fields.at; }).forEach(function (item) {
        chain = chain.then(function () {
          if (stop) { return; }
          return sendOne(item).then(function (how) {
            document.dispatchEvent(new CustomEvent("visit-" + how, {detail: item.visit_id}));
          }, function () { stop = true; });  // no network: the rest waits for the next try
        });
      });
      return chain;
    }).then(function () { flushing = false; return show(); }, function () { flushing = false; });
  }

  // -- the visit form: its draft, the photo, the position, saving into the outbox -------------------------
  var form = document.getElementById("visit-form");
  if (form) {
    var key = "draft:" + form.getAttribute("data-campaign") + ":" + form.getAttribute("data-venue");
    var photoInput = document.getElementById("photo");
    var preview = document.getElementById("photo-preview");
    var state = document.getElementById("save-state");
    var photo = null;

    var draft = JSON.parse(localStorage.getItem(key) || "{}");
    Object.keys(draft).forEach(function (name) {
      var els = form.elements[name];
      if (!els) { return; }
      if (els.length !== undefined && els[0] && els[0].type === "radio") {
        Array.prototype.forEach.call(els, function (e) { e.checked = e.value === draft[name]; });
      } else if (els.type !== "file") { els.value = draft[name]; }
    });
    function saveDraft() {
      var d = {};
      Array.prototype.forEach.call(form.elements, function (e) {
        if (!e.name || e.type === "file") { return; }
        if (e.type === "radio") { if (e.checked) { d[e.name] = e.value; } } else { d[e.name] = e.value; }
      });
      localStorage.setItem(key, JSON.stringify(d));
    }
    function showPhoto(blob) {
      photo = blob;
      if (blob) { preview.src = URL.createObjectURL(blob); preview.hidden = false; }
    }
    // The draft's photo arrives later than the page: one picked meanwhile is newer and stays.
    get(DRAFTS, key).then(function (blob) { if (blob && !photo) { showPhoto(blob); } });
    form.addEventListener("input", saveDraft);
    form.addEventListener("change", saveDraft);
    photoInput.addEventListener("change", function () {
      var f = photoInput.files[0];
      if (!f) { return; }
      showPhoto(f);
      put(DRAFTS, f, key);
    });
    document.getElementById("position").addEventListener("click", function () {
      var out = document.getElementById("position-state");
      if (!navigator.geolocation) { out.textContent = form.getAttribute("data-pos-no"); return; }
      navigator.geolocation.getCurrentPosition(function (p) {
        form.elements.lat.value = p.coords.latitude.toFixed(6);
        form.elements.lon.value = p.coords.longitude.toFixed(6);
        form.elements.accuracy.value = Math.round(p.coords.accuracy);
        out.textContent = form.getAttribute("data-pos-ok") + " (±" + Math.round(p.coords.accuracy) + " m)";
        saveDraft();
      }, function () { out.textContent = form.getAttribute("data-pos-no"); }, {timeout: 15000, maximumAge: 60000});
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var err = document.getElementById("form-error");
      var missing = [];
      form.querySelectorAll("[role=radiogroup], .outcomes").forEach(function (g) {
        if (!g.querySelector("input:checked")) {
          missing.push((g.getAttribute("aria-label") || g.closest("fieldset").querySelector("legend").textContent));
        }
      });
      if (missing.length) {
        err.textContent = err.getAttribute("data-required") + ": " + missing.join(", ");
        err.hidden = false;
        return;
      }
      err.hidden = true;
      var fields = {visit_id: newId(), at: String(Date.now())};
      Array.prototype.forEach.call(form.elements, function (e) {
        if (!e.name || e.type === "file" || (e.type === "radio" && !e.checked)) { return; }
        fields[e.name] = e.value;
      });
      var item = {visit_id: fields.visit_id, fields: fields, photo: photo, sent: false,
                  inspector: body.getAttribute("data-inspector")};
      put(OUTBOX, item).then(function () {
        localStorage.removeItem(key);  // kept in the outbox now: the draft's job is done
        return del(DRAFTS, key);
      }).then(function () {
        form.reset();
        preview.hidden = true;
        photo = null;
        state.textContent = form.getAttribute("data-saved");
        state.hidden = false;
        body.setAttribute("data-saved", fields.visit_id);
        return show().then(flush);
      });
    });
    document.addEventListener("visit-sent", function () {
      state.textContent = form.getAttribute("data-sent");
      state.hidden = false;
    });
  }

  document.querySelectorAll(".time[data-iso]").forEach(function (el) {
    var t = new Date(el.getAttribute("data-iso"));
    if (!isNaN(t)) { el.textContent = t.toLocaleTimeString(document.documentElement.lang === "vi" ? "vi-VN" : "en-GB", {hour: "2-digit", minute: "2-digit"}); }
  });

  // -- the service worker keeps the day's pages; the day page asks it to keep each visit form too -----------
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/field/sw.js", {scope: "/field/"}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      var pages = [location.pathname + location.search];
      document.querySelectorAll("a.record").forEach(function (a) { pages.push(a.getAttribute("href")); });
      if (window.caches) {
        return caches.open("field-pages").then(function (c) {
          return Promise.all(pages.map(function (p) {
            return fetch(p, {credentials: "same-origin"}).then(function (r) { if (r.ok) { return c.put(p, r); } });
          }));
        });
      }
    }).then(function () { body.setAttribute("data-cached", "1"); }, function () { /* no cache: pages need the network */ });
  }

  // Logging out forgets the day's pages kept on this phone (they show the inspector's list); the outbox stays:
  // a visit not yet sent is never thrown away, it goes out after the next login.
  var logout = document.getElementById("logout-form");
  if (logout && window.caches) {
    logout.addEventListener("submit", function () { caches["delete"]("field-pages"); });
  }

  window.addEventListener("online", function () { show(); flush(); });
  window.addEventListener("offline", show);
  show().then(flush);
  setInterval(function () { if (navigator.onLine) { flush(); } }, 20000);
})();

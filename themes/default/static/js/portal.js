/* Portico's progressive enhancements (MOB-3). Every page works without this file: it adds
 * the service worker (offline copies), the install button, the list of saved pages on the
 * offline page, and the web push switch on the notifications page. */
(function () {
  "use strict";

  var worker = "serviceWorker" in navigator && window.isSecureContext;
  if (worker) {
    navigator.serviceWorker.register("/sw.js").catch(function () { /* the portal works without */ });
  }

  // -- the phone's "More" sheet (header) closes on a tap outside it, or on Escape -------------
  var more = document.querySelector(".sections-more details");
  if (more) {
    document.addEventListener("click", function (event) {
      if (more.open && !more.contains(event.target)) more.open = false;
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && more.open) {
        more.open = false;
        more.querySelector("summary").focus();
      }
    });
  }

  // -- destructive forms ask first (deleting a card, revoking a key, ending other sessions) --
  // Without this file they submit straight away, like any form.
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // -- install prompt: offered only when the browser says the portal can be installed --------
  var install = document.querySelector("[data-install]");
  var offer = null;
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    offer = event;
    if (install) install.hidden = false;
  });
  window.addEventListener("appinstalled", function () {
    offer = null;
    if (install) install.hidden = true;
  });
  if (install) {
    install.addEventListener("click", function () {
      if (!offer) return;
      install.hidden = true;
      offer.prompt();
      offer = null;
    });
  }

  // -- the offline page lists the pages saved on this device ---------------------------------
  var saved = document.querySelector("[data-saved-pages]");
  if (saved && window.caches) {
    caches.open("portico-pages").then(function (cache) {
      return cache.keys().then(function (keys) {
        return Promise.all(keys.map(function (key) {
          return cache.match(key).then(function (page) { return {url: new URL(key.url), page: page}; });
        }));
      });
    }).then(function (pages) {
      var list = saved.querySelector("ul");
      pages.reverse().forEach(function (entry) {
        var link = document.createElement("a");
        link.href = entry.url.pathname + entry.url.search;
        var title = decodeURIComponent(entry.page.headers.get("X-Portico-Title") || "");
        link.textContent = title.split(" · ")[0] || entry.url.pathname;
        var item = document.createElement("li");
        item.appendChild(link);
        list.appendChild(item);
      });
      saved.hidden = pages.length === 0;
    });
  }

  // -- web push on this device (notifications page, when the webpush plugin is configured) ----
  var push = document.querySelector("[data-push]");
  if (push && worker && "PushManager" in window && "Notification" in window) {
    setUpPush(push);
  }

  function setUpPush(box) {
    var state = box.querySelector("[data-push-state]");
    var on = box.querySelector("[data-push-on]");
    var off = box.querySelector("[data-push-off]");
    box.hidden = false;

    function say(key, subscribed) {
      state.textContent = box.getAttribute("data-msg-" + key);
      if (subscribed !== undefined) {
        on.hidden = subscribed;
        off.hidden = !subscribed;
      }
    }
    function api(method, path, body) {
      return fetch(path, {
        method: method, credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRF-Token": box.getAttribute("data-csrf")},
        body: body ? JSON.stringify(body) : undefined
      }).then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.status === 204 ? null : answer.json();
      });
    }
    function current() {
      return navigator.serviceWorker.ready.then(function (reg) {
        return reg.pushManager.getSubscription();
      });
    }

    // On only while the portal still knows this browser: a password reset or "sign out
    // everywhere" forgets every browser of the login, and the browser is not told.
    current().then(function (sub) {
      if (!sub) return false;
      return api("GET", "/api/v1/push/subscriptions?limit=100").then(function (list) {
        return list.items.some(function (s) { return s.endpoint === sub.endpoint; });
      });
    }).then(function (known) { say(known ? "on" : "off", known); },
            function () { say("failed"); });

    on.addEventListener("click", function () {
      on.disabled = true;
      say("working");
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") throw new Error("denied");
        return Promise.all([navigator.serviceWorker.ready, api("GET", "/api/v1/push/key")]);
      }).then(function (both) {
        return both[0].pushManager.subscribe({userVisibleOnly: true,
                                              applicationServerKey: base64url(both[1].public_key)});
      }).then(function (sub) {
        var json = sub.toJSON();
        return api("POST", "/api/v1/push/subscriptions", {endpoint: json.endpoint, keys: json.keys});
      }).then(function () {
        say("on", true);
      }).catch(function (error) {
        say(error.message === "denied" || Notification.permission === "denied" ? "denied" : "failed");
      }).then(function () { on.disabled = false; });
    });

    off.addEventListener("click", function () {
      off.disabled = true;
      current().then(function (sub) {
        if (!sub) return null;
        return api("GET", "/api/v1/push/subscriptions?limit=100").then(function (list) {
          var mine = list.items.filter(function (s) { return s.endpoint === sub.endpoint; })[0];
          return mine ? api("DELETE", "/api/v1/push/subscriptions/" + mine.id) : null;
        }).then(function () { return sub.unsubscribe(); });
      }).then(function () {
        say("off", false);
      }).catch(function () {
        say("failed");
      }).then(function () { off.disabled = false; });
    });
  }

  function base64url(text) {
    var raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }
})();

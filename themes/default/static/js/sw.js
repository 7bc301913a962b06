/* Portico's service worker (MOB-3).
 *
 * Served at /sw.js by engine/core/pwa.py, which puts `self.PORTICO = {shell, offlinePages,
 * name, icon}` in front of this file. It keeps:
 *  - the shell (stylesheets, scripts, icons, the offline page) when it installs;
 *  - every fingerprinted /static/ file once fetched (they never change under one URL);
 *  - the newest copy of the customer's dashboard, services, usage and billing pages, each
 *    stamped with the time it was fetched, to show while offline with a note saying when.
 * Saved pages are the signed-in customer's own: they are dropped when someone signs out,
 * when a page comes back signed out, and never kept while staff act as the customer.
 */
"use strict";

const CONFIG = self.PORTICO;
const SHELL = "portico-shell-__VERSION__";
const STATIC = "portico-static";
const PAGES = "portico-pages";
const MAX_PAGES = 40;
const keepable = CONFIG.offlinePages.map((pattern) => new RegExp(pattern));

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL)
    .then((cache) => cache.addAll(CONFIG.shell.map((url) => new Request(url, {cache: "reload"}))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((name) => name.startsWith("portico-shell-") && name !== SHELL)
      .map((name) => caches.delete(name))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && (url.pathname === "/logout" || url.pathname === "/impersonation/end")) {
    event.waitUntil(forgetPages());  // the browser sends the form itself
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/static/") && url.searchParams.has("v")) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate") {
    event.respondWith(navigate(request, url));
  }
});

async function cacheFirst(request) {
  const found = await caches.match(request);
  if (found) return found;
  const response = await fetch(request);
  if (response.ok) {
    const copy = response.clone();
    caches.open(STATIC).then((cache) => cache.put(request, copy));
  }
  return response;
}

async function navigate(request, url) {
  const keep = keepable.some((pattern) => pattern.test(url.pathname));
  let response;
  try {
    response = await fetch(request);
  } catch (offline) {
    const saved = keep ? await (await caches.open(PAGES)).match(pageKey(url)) : undefined;
    if (saved) return savedCopy(saved);
    return (await caches.match("/offline")) || Response.error();
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && type.startsWith("text/html")) {
    const html = await response.clone().text();
    const body = (html.match(/<body[^>]*>/) || [""])[0];
    if (!body.includes('data-signed-in="yes"')) {
      await forgetPages();  // signed out, or the session ended: nobody's pages stay behind
    } else if (keep && body.includes('data-offline="keep"')) {
      await savePage(url, response, html);
    }
  }
  return response;
}

function pageKey(url) {
  return url.origin + url.pathname + url.search;
}

async function savePage(url, response, html) {
  const headers = new Headers(response.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  headers.set("X-Portico-Fetched-At", new Date().toISOString());
  const title = (html.match(/<title>([^<]*)<\/title>/) || ["", ""])[1];
  headers.set("X-Portico-Title", encodeURIComponent(title));
  const cache = await caches.open(PAGES);
  await cache.put(pageKey(url), new Response(html, {status: 200, headers}));
  const keys = await cache.keys();
  // Keep only the newest pages: keys() lists in insertion order, and put() re-inserts.
  await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_PAGES)).map((k) => cache.delete(k)));
}

async function savedCopy(saved) {
  const fetchedAt = saved.headers.get("X-Portico-Fetched-At");
  const html = await saved.text();
  // The page says how it formats times: <time data-fetched-at data-locale="en-GB" data-tz="Europe/London">
  const marked = html
    .replace("data-offline-note hidden", "data-offline-note")
    .replace(/<time data-fetched-at([^>]*)><\/time>/, (element, attributes) => {
      const locale = (attributes.match(/data-locale="([^"]+)"/) || ["", "en-GB"])[1];
      const timeZone = (attributes.match(/data-tz="([^"]+)"/) || ["", undefined])[1];
      let shown = fetchedAt;
      try {
        shown = new Intl.DateTimeFormat(locale, {dateStyle: "medium", timeStyle: "short", timeZone})
          .format(new Date(fetchedAt));
      } catch (unknownLocaleOrZone) { /* keep the ISO time */ }
      return `<time data-fetched-at${attributes} datetime="${fetchedAt}">${shown}</time>`;
    });
  return new Response(marked, {status: 200, headers: saved.headers});
}

function forgetPages() {
  return caches.delete(PAGES);
}

// -- web push: shown when the portal's webpush plugin sends one (plugins/webpush) ----------

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (notJson) {
    message = {title: event.data.text()};
  }
  event.waitUntil(self.registration.showNotification(message.title || CONFIG.name, {
    body: message.body || "", icon: CONFIG.icon, data: {url: message.url || "/"},
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  let target = new URL((event.notification.data || {}).url || "/", self.location.origin);
  if (target.origin !== self.location.origin) target = new URL("/", self.location.origin);
  event.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then((open) => {
    const same = open.find((client) => client.url === target.href && "focus" in client);
    return same ? same.focus() : self.clients.openWindow(target.href);
  }));
});

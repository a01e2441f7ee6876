// The supervisor console: sign in, a live map of the people in the caller's scope with their trails, the day's
// exceptions (most serious first), and a person's day (timeline + trail) opened from either list.
// Reads only the public API (the same one the phones use), in the coordinate system of the base map's tiles.
// No inline script, no innerHTML: every text goes in with textContent (the page's CSP allows nothing else).
"use strict";

(function () {
  const DEVICE_KEY = "gw.console.device";
  const TOKENS_KEY = "gw.console.tokens";
  const STATE_COLORS = { moving: "#12b76a", stopped: "#1f6feb", offline: "#98a2b3" };

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  const app = {
    config: null,
    map: null,
    people: new Map(), // user_id -> {person, marker, trail}
    dayLayer: null,
    streamAbort: null,
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
  };

  // -- tokens ------------------------------------------------------------------------------------------------

  function deviceId() {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id) {
      id = "console-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  }

  function tokens() {
    try {
      return JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null");
    } catch (_error) {
      return null;
    }
  }

  function keepTokens(pair) {
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(pair));
  }

  async function refresh() {
    const held = tokens();
    if (!held) return false;
    const answer = await fetch("/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: held.refresh_token, device_id: deviceId() }),
    });
    if (!answer.ok) return false;
    keepTokens(await answer.json());
    return true;
  }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, value);
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const held = tokens();
      if (!held) throw new Error("signed out");
      const answer = await fetch(url, { headers: { Authorization: "Bearer " + held.access_token } });
      if (answer.status === 401 && attempt === 0 && (await refresh())) continue;
      if (answer.status === 401) {
        signOut();
        throw new Error("signed out");
      }
      if (!answer.ok) throw new Error(path + ": " + answer.status);
      const type = answer.headers.get("content-type") || "";
      return type.includes("json") ? answer.json() : answer.text();
    }
    throw new Error("unreachable");
  }

  // -- sign in -----------------------------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    $("signin-error").textContent = "";
    $("signin-button").disabled = true;
    try {
      const answer = await fetch("/v1/auth/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: $("username").value, password: $("password").value, device_id: deviceId() }),
      });
      if (!answer.ok) {
        const problem = await answer.json().catch(() => ({}));
        $("signin-error").textContent = problem.detail || "Sign-in failed (" + answer.status + ")";
        return;
      }
      keepTokens(await answer.json());
      $("password").value = "";
      await start();
    } finally {
      $("signin-button").disabled = false;
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKENS_KEY);
    if (app.streamAbort) app.streamAbort.abort();
    $("console").hidden = true;
    $("signin").hidden = false;
  }

  // -- the map -----------------------------------------------------------------------------------------------

  function ensureMap() {
    if (app.map) return;
    app.map = L.map("map", { zoomControl: true, preferCanvas: false }).setView([31.2304, 121.4737], 13);
    L.tileLayer(app.config.tile_url, { attribution: app.config.attribution, maxZoom: 19, subdomains: "abc" }).addTo(
      app.map,
    );
  }

  function latLng(point) {
    return [point.lat, point.lon];
  }

  function ago(seconds) {
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function describe(person) {
    const parts = [person.state];
    if (person.position) parts.push(ago(person.position.age_s));
    if (person.battery !== null && person.battery !== undefined) {
      parts.push("battery " + Math.round(person.battery) + "%" + (person.charging ? " (charging)" : ""));
    }
    if (person.open_visit) parts.push("at " + person.open_visit.poi_name);
    if (person.open_job) parts.push("job: " + person.open_job.customer_name);
    return parts.join(" · ");
  }

  function drawPerson(person) {
    let entry = app.people.get(person.user_id);
    if (!entry) {
      entry = { person, marker: null, trail: null };
      app.people.set(person.user_id, entry);
    }
    entry.person = person;
    if (!person.position) return entry;
    const where = latLng(person.position.point);
    const style = { radius: 8, weight: 2, color: "#fff", fillColor: STATE_COLORS[person.state], fillOpacity: 0.95 };
    if (!entry.marker) {
      entry.marker = L.circleMarker(where, { ...style, className: "person-marker" }).addTo(app.map);
      entry.marker.bindTooltip(person.display_name, { permanent: false, direction: "top" });
      entry.marker.on("click", () => openDay(person.user_id, person.display_name));
    } else {
      entry.marker.setLatLng(where);
      entry.marker.setStyle(style);
    }
    entry.marker.getElement && entry.marker.getElement() && entry.marker.getElement().setAttribute("data-user-id", person.user_id);
    return entry;
  }

  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    const entries = [...app.people.values()].sort((a, b) => a.person.display_name.localeCompare(b.person.display_name));
    for (const { person } of entries) {
      const item = el("li");
      item.dataset.userId = person.user_id;
      item.dataset.state = person.state;
      const title = el("div", "title");
      title.append(el("span", "dot " + person.state), document.createTextNode(person.display_name));
      item.append(title, el("div", "meta", describe(person)));
      item.addEventListener("click", () => openDay(person.user_id, person.display_name));
      list.append(item);
    }
    $("people-count").textContent = String(entries.length);
  }

  async function loadLive() {
    const view = await api("/v1/tracking/live", { crs: app.config.tile_crs });
    const seen = new Set();
    for (const person of view.items) {
      drawPerson(person);
      seen.add(person.user_id);
    }
    for (const [id, entry] of app.people) {
      if (!seen.has(id)) {
        if (entry.marker) entry.marker.remove();
        if (entry.trail) entry.trail.remove();
        app.people.delete(id);
      }
    }
    renderPeople();
    const placed = view.items.filter((p) => p.position).map((p) => latLng(p.position.point));
    if (placed.length) app.map.fitBounds(L.latLngBounds(placed).pad(0.3), { maxZoom: 16 });
    document.body.dataset.liveLoaded = String(view.items.length);
  }

  function dayStart(day) {
    // Midnight of `day` in the browser's zone, as an instant (the trail endpoint takes RFC 3339 with an offset).
    const [y, m, d] = day.split("-").map(Number);
    return new Date(y, m - 1, d, 0, 0, 0);
  }

  async function loadTrails() {
    const day = $("day").value;
    const from = dayStart(day);
    const to = new Date(Math.min(Date.now(), from.getTime() + 86400000));
    if (to <= from) return;
    await Promise.all(
      [...app.people.values()]
        .filter((entry) => entry.person.position)
        .map(async (entry) => {
          try {
            const geo = await api("/v1/tracking/users/" + entry.person.user_id + "/trail", {
              from: from.toISOString(),
              to: to.toISOString(),
              format: "geojson",
              crs: app.config.tile_crs,
            });
            const collection = typeof geo === "string" ? JSON.parse(geo) : geo;
            const line = (collection.features || []).find((f) => f.properties && f.properties.kind === "trail");
            const segments = line ? line.geometry.coordinates.map((seg) => seg.map(([lon, lat]) => [lat, lon])) : [];
            if (entry.trail) entry.trail.remove();
            entry.trail = L.polyline(segments, { color: "#1f6feb", weight: 2, opacity: 0.45, className: "person-trail" });
            entry.trail.addTo(app.map);
          } catch (_error) {
            // A trail that cannot be read leaves the marker alone.
          }
        }),
    );
  }

  // -- live updates (Server-Sent Events, read with fetch: EventSource cannot send the token) -------------------

  async function stream() {
    if (app.streamAbort) app.streamAbort.abort();
    const abort = new AbortController();
    app.streamAbort = abort;
    const badge = $("stream-state");
    while (!abort.signal.aborted) {
      const held = tokens();
      if (!held) return;
      try {
        const url = "/v1/tracking/live/stream?crs=" + encodeURIComponent(app.config.tile_crs);
        const answer = await fetch(url, { headers: { Authorization: "Bearer " + held.access_token }, signal: abort.signal });
        if (answer.status === 401) {
          if (!(await refresh())) return signOut();
          continue;
        }
        if (!answer.ok || !answer.body) throw new Error("stream " + answer.status);
        badge.textContent = "connecting";
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = (buffer + value).replace(/\r\n/g, "\n"); // the server separates lines with CRLF
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            await onEvent(block, badge);
          }
        }
        continue; // the server ended the stream (it does every few minutes): reconnect at once
      } catch (error) {
        if (abort.signal.aborted) return;
      }
      badge.textContent = "reconnecting";
      badge.classList.remove("live");
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }

  async function onEvent(block, badge) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trim());
    }
    if (name === "ready") {
      badge.textContent = "live";
      badge.classList.add("live");
      await loadLive(); // subscribed first, then loaded: nothing in between is missed
    } else if (name === "resync") {
      await loadLive();
    } else if (name === "expired") {
      await refresh();
    } else if (name === "position" && data.length) {
      const update = JSON.parse(data.join("\n"));
      const entry = app.people.get(update.user_id);
      if (!entry) return loadLive(); // someone new in scope
      const person = { ...entry.person, state: update.state, position: update.position, battery: update.battery, charging: update.charging };
      drawPerson(person);
      if (entry.trail) entry.trail.addLatLng(latLng(update.position.point));
      renderPeople();
      document.body.dataset.lastUpdate = update.user_id;
    }
  }

  // -- exceptions ----------------------------------------------------------------------------------------------

  function time(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  async function loadExceptions() {
    const answer = await api("/v1/tracking/exceptions", { date: $("day").value, tz: app.tz, crs: app.config.tile_crs });
    const list = $("exceptions");
    list.replaceChildren();
    if (!answer.items.length) list.append(el("li", "empty", "Nothing to look at."));
    for (const item of answer.items) {
      const row = el("li", "sev-" + item.severity);
      row.dataset.kind = item.kind;
      row.dataset.userId = item.user_id;
      row.append(el("div", "title", item.title), el("div", "meta", item.display_name + " · " + time(item.at) + (item.reasons.length ? " · " + item.reasons.join(", ") : "")));
      row.addEventListener("click", () => openDay(item.user_id, item.display_name, item.point));
      list.append(row);
    }
    $("exception-count").textContent = String(answer.items.length);
    document.body.dataset.exceptionsLoaded = String(answer.items.length);
  }

  // -- a person's day ------------------------------------------------------------------------------------------

  function verdictText(verdict) {
    if (!verdict) return "";
    return verdict.status + (verdict.reasons && verdict.reasons.length ? " (" + verdict.reasons.join(", ") + ")" : "");
  }

  function entryText(entry) {
    const minutes = (s) => Math.round(s / 60) + " min";
    switch (entry.type) {
      case "stop":
        return ["Stop " + minutes(entry.dwell_s) + (entry.place ? " at " + entry.place.name : ""), null];
      case "trip":
        return ["Trip " + (entry.distance_m / 1000).toFixed(2) + " km, " + minutes(entry.duration_s), null];
      case "gap":
        return ["No position for " + minutes(entry.duration_s) + " (" + entry.cause + ")", "flag"];
      case "visit":
        return ["Visit " + entry.place.name + ": check-in " + verdictText(entry.check_in), entry.check_in.status === "verified" ? null : "flag"];
      case "job":
        return ["Job " + entry.place.name + " (" + entry.status + ")" + (entry.arrival ? ", arrival " + entry.arrival : ""), entry.arrival && entry.arrival !== "verified" ? "flag" : null];
      case "geofence":
        return [entry.kind + " " + entry.place.name, null];
      default:
        return [entry.type, null];
    }
  }

  async function openDay(userId, name, focus) {
    const day = await api("/v1/tracking/users/" + userId + "/day", { date: $("day").value, tz: app.tz, crs: app.config.tile_crs });
    $("day-panel").hidden = false;
    $("day-panel").dataset.userId = userId;
    $("day-title").textContent = name + " · " + day.date;
    const s = day.summary;
    $("day-summary").textContent =
      (s.distance_m / 1000).toFixed(2) + " km · " + s.stops + " stops · " + s.visits + " visits · " + s.gaps + " gaps · " + s.flagged_check_ins + " flagged";
    const list = $("timeline");
    list.replaceChildren();
    if (!day.timeline.length) list.append(el("li", "empty", "No activity recorded this day."));
    for (const entry of day.timeline) {
      const [text, flag] = entryText(entry);
      const row = el("li", entry.type);
      row.dataset.type = entry.type;
      const start = entry.started_at || entry.at;
      row.append(el("div", "when", time(start) + (entry.ended_at ? " – " + time(entry.ended_at) : "")), el("div", flag || "", text));
      list.append(row);
    }
    if (app.dayLayer) app.dayLayer.remove();
    app.dayLayer = L.layerGroup().addTo(app.map);
    const points = day.trail.filter((p) => !p.mock).map((p) => [p.lat, p.lon]);
    if (points.length) {
      L.polyline(points, { color: "#7a5af8", weight: 4, opacity: 0.85, className: "day-trail" }).addTo(app.dayLayer);
    }
    for (const entry of day.timeline) {
      if (entry.type === "stop") {
        L.circle(latLng(entry.location), { radius: Math.max(entry.radius_m, 15), color: "#1f6feb", weight: 1, className: "day-stop" }).addTo(app.dayLayer);
      }
    }
    if (focus) L.circleMarker(latLng(focus), { radius: 11, color: "#d92d20", weight: 3, fill: false, className: "day-focus" }).addTo(app.dayLayer);
    const bounds = points.length ? L.latLngBounds(points) : focus ? L.latLngBounds([latLng(focus)]) : null;
    if (bounds) app.map.fitBounds(bounds.pad(0.25), { maxZoom: 17 });
    document.body.dataset.dayOpened = userId;
  }

  // -- start ---------------------------------------------------------------------------------------------------

  function today() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
  }

  async function start() {
    $("signin").hidden = true;
    $("console").hidden = false;
    if (!$("day").value) $("day").value = today();
    ensureMap();
    app.map.invalidateSize();
    try {
      const me = await api("/v1/me");
      $("who").textContent = (me.display_name || me.username || "") + (me.role ? " · " + me.role : "");
    } catch (_error) {
      // The label is a nicety.
    }
    await loadLive();
    await Promise.all([loadExceptions(), loadTrails()]);
    stream();
  }

  async function boot() {
    app.config = await (await fetch("/console/config.json")).json();
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("day-close").addEventListener("click", () => {
      $("day-panel").hidden = true;
      if (app.dayLayer) app.dayLayer.remove();
    });
    $("day").addEventListener("change", () => {
      loadExceptions();
      loadTrails();
    });
    if (tokens()) {
      start().catch(() => signOut());
    } else {
      $("signin").hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    boot().catch((error) => {
      document.body.dataset.bootError = String(error);
    });
  });
})();

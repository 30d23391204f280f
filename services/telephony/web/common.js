// Shared by the softphone and the dashboard: the access token, JSON and event-stream helpers.
"use strict";

const Ringline = (() => {
  const KEY = "ringline-token";

  // The token comes once in the URL (#token=... keeps it out of server logs) and stays for the tab.
  function token() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    const fromQuery = new URLSearchParams(location.search).get("token");
    const given = fromHash || fromQuery;
    if (given) {
      sessionStorage.setItem(KEY, given);
      history.replaceState(null, "", location.pathname);
    }
    return sessionStorage.getItem(KEY) || "";
  }

  function withToken(url) {
    const t = token();
    if (!t) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t);
  }

  class AuthError extends Error {}

  async function getJSON(url) {
    const t = token();
    const res = await fetch(url, { headers: t ? { Authorization: "Bearer " + t } : {} });
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      throw new AuthError(body.detail || "not allowed");
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.detail || res.status + " " + res.statusText);
    }
    return res.json();
  }

  // An EventSource that reconnects on its own; `onUpdate` gets each JSON object.
  function follow(url, onUpdate, onState) {
    let source = null;
    let closed = false;
    const open = () => {
      source = new EventSource(withToken(url));
      source.onopen = () => onState && onState("live");
      source.onmessage = (e) => onUpdate(JSON.parse(e.data));
      source.onerror = () => {
        onState && onState("reconnecting");
        if (source.readyState === EventSource.CLOSED && !closed) setTimeout(open, 2000);
      };
    };
    open();
    return { close() { closed = true; source && source.close(); } };
  }

  // A small form that asks for the token when the edge wants one.
  function askToken(where, message) {
    where.innerHTML = "";
    const form = document.createElement("form");
    form.className = "token-form";
    form.innerHTML = '<p></p><input type="password" name="t" placeholder="access token" autocomplete="off">' +
      '<button type="submit">Continue</button>';
    form.querySelector("p").textContent = message;
    form.onsubmit = (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY, form.t.value.trim());
      location.reload();
    };
    where.appendChild(form);
  }

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" })[c]);
  const clock = (t) => t ? new Date(t * 1000).toLocaleString() : "-";
  const duration = (s) => s == null ? "-" : s < 60 ? Math.round(s) + " s" :
    Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
  const money = (v, currency) => v ? (currency === "USD" || !currency ? "$" : currency + " ") +
    (v < 0.01 ? v.toFixed(5) : v.toFixed(3)) : "$0";
  const ms = (v) => v == null ? "-" : Math.round(v) + " ms";

  return { token, withToken, getJSON, follow, askToken, AuthError, esc, clock, duration, money, ms };
})();

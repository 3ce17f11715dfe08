// The live page: every caption the server makes arrives over Server-Sent Events
// (/v1/live) with a thumbnail. EventSource reconnects by itself and sends the last
// event id, so the server replays only what was missed. When the server asks
// viewers for a token (server.live: token), the page is opened as /live?token=...
// and passes the token on (EventSource cannot send an Authorization header).
"use strict";
const feed = document.getElementById("feed"), status = document.getElementById("status");
const empty = document.getElementById("empty");
const maxItems = 100;
const seen = new Set();
const token = new URLSearchParams(location.search).get("token");

// The tab keeps the token for its other pages: their nav's Live link carries
// it (app.js), as this page's does, or /live would answer them 401.
if (token) {
  document.getElementById("live-link").href = "/live?token=" + encodeURIComponent(token);
  try {
    sessionStorage.setItem("captioner-live-token", token);
  } catch {
    // Site storage blocked: the upload page's Live link stays /live.
  }
}

// retryAfter is how long the page waits to reconnect after the server refused
// the stream (too many streams from this address or in all, a bad token):
// EventSource gives up for good on any answer but 200.
const retryAfter = 10000;

const streamURL = token ? "/v1/live?token=" + encodeURIComponent(token) : "/v1/live";

// refusal asks the stream's URL once more, with fetch, for what EventSource
// does not tell: the status and the server's error message of a refusal. It
// hangs up at once on a stream that opens this time. null when it learns
// nothing (the network is down, the answer is no JSON).
async function refusal() {
  const hangUp = new AbortController();
  try {
    const r = await fetch(streamURL, { signal: hangUp.signal, headers: { Accept: "text/event-stream" } });
    if (r.ok) return null;
    const body = await r.json();
    return typeof body.error === "string" ? { status: r.status, error: body.error } : null;
  } catch {
    return null;
  } finally {
    hangUp.abort();
  }
}

function connect() {
  const es = new EventSource(streamURL);
  es.onopen = () => { status.className = "status ok"; status.textContent = "live"; };
  es.onerror = async () => {
    status.className = "status wait";
    if (es.readyState !== EventSource.CLOSED) {
      status.textContent = "reconnecting…";
      return;
    }
    const why = await refusal();
    // A token the server no longer takes stays off the other pages' Live link.
    if (why && why.status === 401 && token) {
      try {
        if (sessionStorage.getItem("captioner-live-token") === token) sessionStorage.removeItem("captioner-live-token");
      } catch {
        // Site storage blocked: nothing was kept.
      }
    }
    const reason = why ? why.error : "too many live streams open, or a wrong token";
    status.textContent = `refused by the server: ${reason} (retrying in ${retryAfter / 1000} s)`;
    setTimeout(connect, retryAfter);
  };
  es.addEventListener("caption", (e) => {
    if (seen.has(e.lastEventId)) return;
    seen.add(e.lastEventId);
    show(JSON.parse(e.data));
  });
}

function show(ev) {
  const img = Object.assign(document.createElement("img"), { src: ev.thumbnail, alt: "" });
  const text = Object.assign(document.createElement("div"), { className: "text", textContent: ev.caption });
  const tags = Object.assign(document.createElement("div"), {
    className: "tags",
    textContent: ev.tags.map((t) => `${t.noun} ${Math.round(t.prob * 100)}%`).join(" · ") +
      ` · confidence ${Math.round(ev.confidence * 100)}%`,
  });
  const when = new Date(ev.time).toLocaleTimeString();
  const meta = Object.assign(document.createElement("div"), {
    className: "meta",
    textContent: `${when} · ${ev.filename || "upload"} · ${ev.model.name} ${ev.model.version}`,
  });
  const body = document.createElement("div");
  body.append(text, tags, meta);
  const li = document.createElement("li");
  li.append(img, body);
  feed.prepend(li);
  empty.hidden = true;
  while (feed.children.length > maxItems) feed.lastChild.remove();
}

connect();

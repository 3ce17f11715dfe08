// The upload page: choose, drop or paste photos, preview them, POST them to
// /v1/captions (in as many requests as the server's limits need) and show each
// caption, its confidence, the encoder's tags, its alternatives and timings.
"use strict";
const $ = (id) => document.getElementById(id);
const drop = $("drop"), fileInput = $("file"), results = $("results"), errorBox = $("error"), status = $("status");
const retryButton = $("retry"), progress = $("progress"), progressBar = $("progress-bar"), announce = $("announce");
let served = []; // the models the server holds, the default first
// What one request may carry (GET /v1/models; these are the server's defaults).
let limits = { max_images: 16, max_body_bytes: 32 << 20, max_beam: 8, max_len: 100 };
const modelSelect = $("model-select");
// The option fields every request sends, and the limit that bounds each.
const options = { beam: "max_beam", max_len: "max_len", alternatives: "max_beam" };

// fetchModels asks GET /v1/models which models the server holds and its
// limits. While the server loads and warms up its model it answers 503 with a
// Retry-After (1 s), and while it restarts it does not answer at all: the page
// asks again, after that long or, as the tries go on, longer (1, 2, 4, then 5 s
// between tries), so that a page left open on a server slow to start does not
// ask each second; a Retry-After past a minute counts as a minute. A page
// that had given up on the first 503 never learnt the models: no selector,
// and no attention maps asked for. Any other answer is final: where it is not
// the list (a proxy that does not route /v1/models, a server error, a page
// that is not JSON), fetchModels returns null, and the page keeps its default
// limits and offers no models.
async function fetchModels() {
  for (let backoff = 1; ; backoff = Math.min(2 * backoff, 5)) {
    let wait = backoff;
    try {
      const r = await fetch("/v1/models");
      if (r.status !== 503) return r.ok ? await r.json().catch(() => null) : null;
      wait = Math.max(backoff, Math.min(Number(r.headers.get("Retry-After")) || 0, 60));
    } catch {
      // No answer (the server restarting, the network down): asked again.
    }
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

// Where the server holds several models, the page lets the user pick one.
// models settles once the server has said which models it holds and its
// limits, or that it will not say (modelsKnown says whether it has settled).
let modelsKnown = false;
const models = fetchModels().then((j) => {
  modelsKnown = true;
  if (j) limits = { ...limits, ...j.limits }; // a server before limits keeps the defaults
  boundFields();
  if (!j || !j.models.length) return;
  served = j.models;
  if (served.length > 1) {
    modelSelect.replaceChildren(...served.map((m) => el("option", { value: m.name }, m.name + (m.default ? " (default)" : ""))));
    modelSelect.addEventListener("change", showModel);
    $("model-choice").hidden = false;
  }
  showModel();
}).catch(() => {});

// An upload waits for models, but no longer than two minutes from the page's
// opening, well past a server's load and warm-up: a server that never gets
// there (its model failed to load and it exited) would keep the photos
// waiting for ever. Past that, they go with what the page knows (at worst
// the default limits and the default model), and the upload's own request
// gets the server's answer, or none, to show. fetchModels asks on.
const modelsOrTimeout = Promise.race([models, new Promise((resolve) => setTimeout(resolve, 2 * 60 * 1000))]);

// boundFields makes the option fields hold what the server accepts (a value
// above is brought down to the bound): send asks the browser to say which
// field is off before a request would be refused with 400. Alternatives are
// at most the beam width too: beam 1 with 3 alternatives was refused.
function boundFields() {
  for (const [id, limit] of Object.entries(options)) {
    $(id).max = limits[limit];
    if (+$(id).value > limits[limit]) $(id).value = limits[limit];
  }
  const beam = +$("beam").value;
  if (beam >= 1) {
    $("alternatives").max = Math.min(limits.max_beam, beam);
    if (+$("alternatives").value > beam) $("alternatives").value = beam;
  }
}
$("beam").addEventListener("input", boundFields);

// chosen is the model the next upload asks for.
function chosen() {
  return served.find((m) => m.name === modelSelect.value) || served.find((m) => m.default) || served[0];
}

function showModel() {
  const m = chosen();
  $("model").textContent = `${m.name} ${m.version} · ${m.device}`;
}

// With server.live: token, /live needs the viewer token: the nav's Live link
// carries the one this tab's live page was opened with (live.js keeps it), or
// it would answer 401.
function liveLink() {
  try {
    const token = sessionStorage.getItem("captioner-live-token");
    if (token) $("live-link").href = "/live?token=" + encodeURIComponent(token);
  } catch {
    // Site storage blocked: the link stays /live.
  }
}
liveLink();
// A page the back/forward cache restores runs no script anew, and the tab may
// have opened /live?token= since (then Back): the link reads the token again.
addEventListener("pageshow", (e) => { if (e.persisted) liveLink(); });

drop.addEventListener("click", () => fileInput.click());
drop.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" && e.key !== " ") return;
  e.preventDefault(); // Space would scroll the page too
  fileInput.click();
});
fileInput.addEventListener("change", () => {
  send([...fileInput.files]);
  fileInput.value = ""; // choosing the same photo again (say, at another beam width) sends it again
});
for (const ev of ["dragenter", "dragover"]) {
  drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const ev of ["dragleave", "drop"]) {
  drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
// dropped splits the items of a drop into files and the names of the folders
// among them. A folder is not sent: Chromium refuses to read one into a
// request (net::ERR_ACCESS_DENIED), which failed the whole upload with
// "Failed to fetch", and the page does not read the photos inside.
function dropped(items) {
  const files = [], folders = [];
  for (const item of items) {
    if (item.kind !== "file") continue; // text or a link dragged from another page
    const entry = item.webkitGetAsEntry();
    if (entry && entry.isDirectory) folders.push(entry.name);
    else files.push(item.getAsFile());
  }
  return { files, folders };
}

// skippedNote says which dropped folders were not sent, and what to do instead.
function skippedNote(folders) {
  const names = folders.map((n) => `“${n}”`).join(", ");
  return folders.length > 1 ? `skipped the folders ${names}: open them and drop the photos inside instead`
    : `skipped the folder ${names}: open it and drop the photos inside instead`;
}

// showNote says in the status line what the page left out (the folders a drop
// skipped). The error box is left as it is: an upload's error and its Try
// again stay.
function showNote(note) {
  status.className = "status wait";
  status.textContent = note;
}

drop.addEventListener("drop", (e) => {
  // Read now: the browser empties e.dataTransfer once the event is over.
  const { files, folders } = dropped([...e.dataTransfer.items]);
  const note = folders.length ? skippedNote(folders) : "";
  if (files.length) send(files, false, note);
  else if (note) showNote(note);
});
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.items].filter((i) => i.kind === "file").map((i) => i.getAsFile());
  if (files.length) send(files);
});

// showError says why an upload stopped; its Try again sends files again (the
// user need not pick them again), as the rest of the upload whose cards are
// shown when more is set.
function showError(msg, files, more = false) {
  $("error-text").textContent = msg;
  retryButton.onclick = () => send(files, more);
  errorBox.hidden = false;
}

// hide hides el. Where el holds the keyboard's focus (Cancel, Try again), the
// focus moves to the drop zone first: a hidden element loses it to the page's
// body, and a keyboard user would start again from the top of the page.
function hide(el) {
  if (el.contains(document.activeElement)) drop.focus();
  el.hidden = true;
}

// refusal is what the page says when the server refused a request as a whole.
// A 429's error speaks to programs (it names the Retry-After header): people
// read a sentence of their own, with the server's wait where it is over 5 s,
// else (or where the server named none) "a few seconds". post has waited and
// asked again only where the Retry-After was 1 to 30 s; a 429 without one, or
// with a longer one, comes here from the first try.
function refusal(resp, body) {
  const retry = Number(resp.headers.get("Retry-After"));
  if (resp.status === 429) {
    return `the server is busy captioning other photos: try again in ${retry > 5 ? `${retry} s` : "a few seconds"}`;
  }
  return body.error + (retry ? ` (the server asks to wait ${retry} s before trying again)` : "");
}

// megabytes is n bytes as a person reads it.
const megabytes = (n) => n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;

// room is how many bytes of photos one request may carry: max_body_bytes less
// room for each part's headers and the other fields.
const room = () => limits.max_body_bytes - 4096;
const partBytes = (f) => f.size + 512;

// batches splits files into requests the server takes: at most max_images
// each, their sizes within room. A file too large alone goes alone (send
// says so on its card, and does not send it).
function batches(files) {
  const out = [];
  let cur = [], bytes = 0;
  for (const f of files) {
    const size = partBytes(f);
    if (cur.length && (cur.length >= limits.max_images || bytes + size > room())) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

// sleep waits ms, or rejects when signal aborts (at once if it has).
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal.aborted) return reject(signal.reason);
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});

// fieldsFor reads the options once per upload, so that editing them while it
// sends does not mix settings within it.
function fieldsFor(model) {
  const fields = Object.keys(options).map((k) => [k, $(k).value]);
  if ($("guide").value !== "") fields.push(["guide", $("guide").value]);
  if (served.length > 1) fields.push(["model", model.name]);
  // An attention model answers attention=1: its captions show where each word looked.
  if (model && model.arch === "attention") fields.push(["attention", "1"]);
  return fields;
}

// post sends one request of files, waiting out a busy server (429, or 503
// while it loads or at its connection limit) up to twice as its Retry-After
// says, and returns the response and its JSON.
async function post(files, fields, progress, signal) {
  for (let attempt = 1; ; attempt++) {
    const form = new FormData();
    for (const f of files) form.append("image", f, f.name || "pasted.png");
    for (const [k, v] of fields) form.append(k, v);
    status.textContent = progress;
    const resp = await fetch("/v1/captions", { method: "POST", body: form, signal });
    const body = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
    signal.throwIfAborted(); // replaced while the answer was read: it must not reach the page
    const retry = Number(resp.headers.get("Retry-After"));
    if ((resp.status !== 429 && resp.status !== 503) || attempt === 3 || !(retry > 0 && retry <= 30)) return { resp, body };
    status.textContent = `the server is busy; trying again in ${retry} s…`;
    await sleep(retry * 1000, signal);
  }
}

let uploading = null; // the AbortController of the upload still sending, if any
$("cancel").addEventListener("click", () => uploading && uploading.abort(new DOMException("cancelled", "AbortError")));

// invalidField is the first option field the server would refuse, or none.
const invalidField = () => Object.keys(options).map($).find((f) => !f.checkValidity());

// send captions files: a new upload, or with more the rest of one that
// stopped, whose cards stay. note, when set, ends the upload's last status
// line (the folders a drop skipped).
async function send(files, more = false, note = "") {
  files = files.filter((f) => f);
  if (!files.length) return;
  // Which model, its limits, and whether to ask for attention weights: a page
  // opened while the server warms up waits for them (within modelsOrTimeout).
  if (!modelsKnown) {
    status.className = "status wait";
    status.textContent = "the server is loading its model; the photos go once it is ready…";
    await modelsOrTimeout;
    status.className = "status";
    status.textContent = "";
  }
  const bad = invalidField();
  if (bad) { // the photos wait for the fix, not dropped; an upload sending goes on
    bad.reportValidity();
    showError(`${bad.labels[0].firstChild.textContent.trim()}: ${bad.validationMessage} Fix it, then try again.`, files);
    if (note) showNote(note);
    return;
  }
  // A new upload replaces one still sending: its remaining requests are
  // cancelled and its results cleared, so the two never mix.
  if (uploading) uploading.abort();
  const ctl = uploading = new AbortController();
  hide(errorBox);
  // The last upload's cards stay, dimmed, until this one's first answer
  // (and for good when this is its rest).
  if (!more) results.classList.add("stale");
  let cleared = more;
  const show = (...cards) => {
    if (!cleared) { results.replaceChildren(); results.classList.remove("stale"); cleared = true; }
    results.append(...cards);
  };
  const model = chosen(), fields = fieldsFor(model);
  const queue = batches(files);
  let sent = 0, failed = 0, requests = 0;
  const stop = (msg) => {
    results.classList.remove("stale"); // nothing new came: the last cards are what there is
    // Try again sends the photos not yet answered, in order: the shown cards
    // stay. Before any answer, that is the whole upload, as it was.
    showError(msg, files.slice(sent), cleared && sent > 0 || more);
    status.className = "status";
    status.textContent = [sent ? `${sent} of ${files.length} images answered before this` : "", note].filter(Boolean).join(" · ");
  };
  status.className = "status wait";
  progress.hidden = false;
  progressBar.value = 0;
  const t0 = performance.now();
  try {
    while (queue.length) {
      const group = queue.shift();
      if (partBytes(group[0]) > room()) { // larger than a request may carry: not sent
        const f = group[0];
        show(failedCard({ error: `${f.name || "the photo"} is ${megabytes(f.size)}; this server takes at most ${megabytes(room() - 512)} a photo`, filename: f.name }, URL.createObjectURL(f)));
        failed++;
        sent++;
        progressBar.value = sent / files.length;
        continue;
      }
      const doing = queue.length === 0 && sent === 0
        ? `captioning ${files.length} image${files.length > 1 ? "s" : ""}…`
        : group.length === 1 ? `captioning image ${sent + 1} of ${files.length}…`
        : `captioning images ${sent + 1}–${sent + group.length} of ${files.length}…`;
      const { resp, body } = await post(group, fields, doing, ctl.signal);
      requests++;
      if ((resp.status === 413 || resp.status === 408) && group.length > 1 && !body.captions) {
        // Too large together by a limit the page cannot see (the images'
        // decoded size, a proxy's body limit), or too slow to arrive within
        // the server's time for a body (a slow uplink): halves, down to
        // single files. (An answer with each image's reason is final.)
        const mid = Math.ceil(group.length / 2);
        queue.unshift(group.slice(0, mid), group.slice(mid));
        continue;
      }
      const previews = group.map((f) => URL.createObjectURL(f));
      if (resp.status === 413 || resp.status === 408) { // one file alone: it says why, the others go on
        show(failedCard({ error: body.error, filename: group[0].name }, previews[0]));
        failed++;
      } else if (!resp.ok && body.captions) { // none of the group could be captioned: each says why
        show(...body.captions.map((c, i) => failedCard(c, previews[i])));
        failed += group.length;
      } else if (!resp.ok) {
        stop(refusal(resp, body));
        return;
      } else {
        // An image the server could not caption has an error entry in its place.
        show(...body.captions.map((c, i) => c.error ? failedCard(c, previews[i]) : withAttention(card(c, previews[i]), c)));
        failed += body.captions.filter((c) => c.error).length;
      }
      sent += group.length;
      progressBar.value = sent / files.length;
    }
  } catch (e) {
    if (ctl.signal.reason instanceof DOMException && ctl.signal.reason.message === "cancelled") {
      stop("cancelled");
    } else if (!ctl.signal.aborted) {
      stop(`the server did not answer (${e.message}): check the connection, then try again`);
    }
    return;
  } finally {
    if (uploading === ctl) {
      uploading = null;
      hide(progress);
    }
  }
  status.className = failed ? "status wait" : "status ok";
  status.textContent = `done in ${Math.round(performance.now() - t0)} ms` +
    (requests > 1 ? ` · ${requests} requests` : "") +
    (failed ? ` · ${failed} of ${files.length} could not be captioned` : "") +
    (note ? ` · ${note}` : "");
}

function el(tag, props = {}, ...kids) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
}

// tagLine is "cat 93% (Egyptian cat) · ..." for a caption's tags.
function tagLine(tags) {
  return tags.map((t) => `${t.noun} ${Math.round(t.prob * 100)}%` + (t.label !== t.noun ? ` (${t.label.split(",")[0]})` : "")).join(" · ");
}

// failedCard shows why one image of the upload has no caption.
function failedCard(c, preview) {
  // The browser may show what the server refused (a photo too large, say); a
  // file it cannot show either gets a plain box.
  const img = el("img", { src: preview, alt: "" });
  img.addEventListener("error", () => img.replaceWith(el("div", { className: "no-preview" }, "no preview")));
  say(`${c.filename || "upload"}: not captioned`);
  return el("section", { className: "card result failed" },
    img,
    el("div", {},
      el("h2", { className: "filename" }, c.filename || "upload"),
      el("p", { className: "image-error" }, c.error)));
}

// say tells a screen reader what arrived: each card's file and caption.
function say(line) {
  announce.textContent = announce.textContent ? announce.textContent + "\n" + line : line;
  clearTimeout(say.reset);
  say.reset = setTimeout(() => { announce.textContent = ""; }, 2000);
}

function card(c, preview) {
  const alts = el("ol", { className: "alts" },
    ...c.alternatives.map((a) => el("li", {}, a.caption + " ", el("span", { className: "score" }, a.score.toFixed(3)))));
  const guided = c.guided.length ? ` · guided to name ${c.guided.join(", ")}` : "";
  // A photo of things alone is captioned as the object, not by the decoder.
  const lone = c.lone_object ? ` · a photo of things alone (${Math.round(c.lone_object * 100)}% sure): the decoder's captions are among the alternatives` : "";
  const t = c.timings_ms;
  const rows = [["preprocess", t.preprocess], ["queue wait", t.queue], ["encode (batch)", t.encode],
    ["decode (batch)", t.decode], ["total", t.total]];
  const timings = el("table", { className: "timings" },
    ...rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { className: "v" }, `${v.toFixed(1)} ms`))));
  say(`${c.filename || "upload"}: ${c.caption}`);
  return el("section", { className: "card result" },
    el("img", { src: preview, alt: c.caption }), // what the photo shows, as the model says
    el("div", {},
      el("h2", { className: "filename" }, c.filename || "upload"),
      el("p", { className: "caption" }, c.caption),
      el("p", { className: "confidence muted" }, `confidence ${Math.round(c.confidence * 100)}%${guided}${lone}`),
      el("p", { className: "tags" }, c.tags.length ? "Recognised: " + tagLine(c.tags) : "Recognised: nothing above the tag threshold"),
      el("div", { className: "muted" }, "Alternatives (length-normalised log-probability)"),
      alts,
      timings,
      el("div", { className: "muted" },
        `${c.width}×${c.height} · batch of ${c.batch_size} · ${c.model.name} ${c.model.version}`)));
}

// withAttention makes each word of an attention caption's card show, while the
// pointer is over it or it has the keyboard's focus (Tab to the caption, then
// the arrow keys; a tap focuses it too), where the decoder looked when it
// chose the word: the photo dimmed but for the word's regions (its 7x7
// weights, scaled up smoothly by the browser). A caption is one stop of the
// Tab key, not one a word. A caption without weights (a merge model's) says
// why it has no maps.
function withAttention(card, c) {
  const words = c.caption.split(/\s+/).filter((w) => w);
  if (!c.attention || c.attention.length !== words.length) {
    card.querySelector(".caption").after(el("p", { className: "muted" }, `${c.model.name} is not an attention model: no maps of where each word looked`));
    return card;
  }
  const img = card.querySelector("img"), text = card.querySelector(".caption");
  const grid = Math.round(Math.sqrt(c.attention[0].length));
  const canvas = el("canvas", { className: "attention", width: grid, height: grid });
  const frame = el("div", { className: "photo" });
  img.replaceWith(frame);
  frame.append(img, canvas);
  const ctx = canvas.getContext("2d");
  const show = (w) => {
    const top = Math.max(...w);
    const px = ctx.createImageData(grid, grid);
    w.forEach((v, i) => { px.data[4 * i + 3] = Math.round(200 * (1 - v / top)); });
    ctx.putImageData(px, 0, 0);
    canvas.classList.add("on");
  };
  const spans = words.map((word, i) => {
    const span = el("span", { className: "word", tabIndex: i ? -1 : 0 }, word);
    for (const ev of ["mouseenter", "focus"]) span.addEventListener(ev, () => show(c.attention[i]));
    for (const ev of ["mouseleave", "blur"]) span.addEventListener(ev, () => canvas.classList.remove("on"));
    span.addEventListener("keydown", (e) => {
      const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: words.length - 1 }[e.key];
      if (to === undefined || to < 0 || to >= words.length) return;
      e.preventDefault();
      span.tabIndex = -1;
      spans[to].tabIndex = 0;
      spans[to].focus();
    });
    return span;
  });
  text.replaceChildren(...spans.flatMap((span, i) => i ? [" ", span] : [span]));
  card.querySelector(".confidence").after(el("p", { className: "muted word-hint" }, "Point at a word, or Tab to the caption and use the arrow keys, to see where the decoder looked for it."));
  return card;
}

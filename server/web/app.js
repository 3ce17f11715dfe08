// The upload page: choose, drop or paste photos, preview them, POST them to
// /v1/captions (in as many requests as the server's limits need) and show each
// caption, its confidence, the encoder's tags, its alternatives and timings.
"use strict";
const $ = (id) => document.getElementById(id);
const drop = $("drop"), fileInput = $("file"), results = $("results"), errorBox = $("error"), status = $("status");
let served = []; // the models the server holds, the default first
// What one request may carry (GET /v1/models; these are the server's defaults).
let limits = { max_images: 16, max_body_bytes: 32 << 20, max_beam: 8, max_len: 100 };
const modelSelect = $("model-select");
// The option fields every request sends, and the limit that bounds each.
const options = { beam: "max_beam", max_len: "max_len", alternatives: "max_beam" };

// Where the server holds several models, the page lets the user pick one.
const models = fetch("/v1/models").then((r) => r.ok ? r.json() : null).catch(() => null).then((j) => {
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

// boundFields makes the option fields hold what the server accepts (a value
// above is brought down to the bound): send asks the browser to say which
// field is off before a request would be refused with 400.
function boundFields() {
  for (const [id, limit] of Object.entries(options)) {
    $(id).max = limits[limit];
    if (+$(id).value > limits[limit]) $(id).value = limits[limit];
  }
}

// chosen is the model the next upload asks for.
function chosen() {
  return served.find((m) => m.name === modelSelect.value) || served.find((m) => m.default) || served[0];
}

function showModel() {
  const m = chosen();
  $("model").textContent = `${m.name} ${m.version} · ${m.device}`;
}

drop.addEventListener("click", () => fileInput.click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") fileInput.click(); });
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
drop.addEventListener("drop", (e) => send([...e.dataTransfer.files]));
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.items].filter((i) => i.kind === "file").map((i) => i.getAsFile());
  if (files.length) send(files);
});

function showError(msg) {
  errorBox.textContent = msg;
  errorBox.hidden = false;
}

// batches splits files into requests the server takes: at most max_images
// each, their sizes under max_body_bytes less room for each part's headers and
// the other fields. A file too large alone goes alone, and the server says why
// it refuses it.
function batches(files) {
  const room = limits.max_body_bytes - 4096, out = [];
  let cur = [], bytes = 0;
  for (const f of files) {
    const size = f.size + 512;
    if (cur.length && (cur.length >= limits.max_images || bytes + size > room)) {
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

// post sends one request of files, waiting out a busy server (429) up to
// twice as its Retry-After says, and returns the response and its JSON.
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
    if (resp.status !== 429 || attempt === 3 || !(retry > 0 && retry <= 30)) return { resp, body };
    status.textContent = `the server is busy; trying again in ${retry} s…`;
    await sleep(retry * 1000, signal);
  }
}

let uploading = null; // the AbortController of the upload still sending, if any

async function send(files) {
  files = files.filter((f) => f);
  if (!files.length) return;
  // A new upload replaces one still sending: its remaining requests are
  // cancelled and its results cleared, so the two never mix.
  if (uploading) uploading.abort();
  const ctl = uploading = new AbortController();
  await models; // which model, its limits, and whether to ask for attention weights
  if (ctl.signal.aborted) return;
  if (!Object.keys(options).every((id) => $(id).reportValidity())) return;
  errorBox.hidden = true;
  results.replaceChildren();
  const model = chosen(), fields = fieldsFor(model);
  const queue = batches(files);
  let sent = 0, failed = 0, requests = 0;
  const stop = (msg) => {
    showError(msg);
    status.className = "status";
    status.textContent = sent ? `${sent} of ${files.length} images answered before this` : "";
  };
  status.className = "status wait";
  const t0 = performance.now();
  try {
    while (queue.length) {
      const group = queue.shift();
      const progress = queue.length === 0 && sent === 0
        ? `captioning ${files.length} image${files.length > 1 ? "s" : ""}…`
        : group.length === 1 ? `captioning image ${sent + 1} of ${files.length}…`
        : `captioning images ${sent + 1}–${sent + group.length} of ${files.length}…`;
      const { resp, body } = await post(group, fields, progress, ctl.signal);
      requests++;
      if (resp.status === 413 && group.length > 1) {
        // Too large together by a limit the page cannot see (the images'
        // decoded size, a proxy's body limit): halves, down to single files.
        const mid = Math.ceil(group.length / 2);
        queue.unshift(group.slice(0, mid), group.slice(mid));
        continue;
      }
      const previews = group.map((f) => URL.createObjectURL(f));
      if (resp.status === 413) { // one file too large alone: it says why, the others go on
        results.append(failedCard({ error: body.error, filename: group[0].name }, previews[0]));
        failed++;
      } else if (!resp.ok) {
        const retry = resp.headers.get("Retry-After");
        stop(body.error + (retry ? ` (retry in ${retry} s)` : ""));
        return;
      } else {
        // An image the server could not caption has an error entry in its place.
        body.captions.forEach((c, i) => results.append(c.error ? failedCard(c, previews[i]) : withAttention(card(c, previews[i]), c)));
        failed += body.captions.filter((c) => c.error).length;
      }
      sent += group.length;
    }
  } catch (e) {
    if (!ctl.signal.aborted) stop(`the server did not answer: ${e.message}`);
    return;
  } finally {
    if (uploading === ctl) uploading = null;
  }
  status.className = failed ? "status wait" : "status ok";
  status.textContent = `done in ${Math.round(performance.now() - t0)} ms` +
    (requests > 1 ? ` · ${requests} requests` : "") +
    (failed ? ` · ${failed} of ${files.length} could not be captioned` : "");
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
  const img = el("img", { src: preview, alt: c.filename || "uploaded file" });
  img.addEventListener("error", () => img.replaceWith(el("div", { className: "no-preview" }, "no preview")));
  return el("section", { className: "card result failed" },
    img,
    el("div", {},
      el("p", { className: "image-error" }, c.error),
      el("div", { className: "muted" }, c.filename || "upload")));
}

function card(c, preview) {
  const alts = el("ol", { className: "alts" },
    ...c.alternatives.map((a) => el("li", {}, a.caption + " ", el("span", { className: "score" }, a.score.toFixed(3)))));
  const guided = c.guided.length ? ` · guided to name ${c.guided.join(", ")}` : "";
  const t = c.timings_ms;
  const rows = [["preprocess", t.preprocess], ["queue wait", t.queue], ["encode (batch)", t.encode],
    ["decode (batch)", t.decode], ["total", t.total]];
  const timings = el("table", { className: "timings" },
    ...rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { className: "v" }, `${v.toFixed(1)} ms`))));
  return el("section", { className: "card result" },
    el("img", { src: preview, alt: c.filename || "uploaded photo" }),
    el("div", {},
      el("p", { className: "caption" }, c.caption),
      el("p", { className: "confidence muted" }, `confidence ${Math.round(c.confidence * 100)}%${guided}`),
      el("p", { className: "tags" }, c.tags.length ? "Recognised: " + tagLine(c.tags) : "Recognised: nothing above the tag threshold"),
      el("div", { className: "muted" }, "Alternatives (length-normalised log-probability)"),
      alts,
      timings,
      el("div", { className: "muted" },
        `${c.width}×${c.height} · batch of ${c.batch_size} · ${c.model.name} ${c.model.version}`)));
}

// withAttention makes each word of an attention caption's card show, while the
// pointer is over it or it has the keyboard's focus (Tab; a tap focuses it
// too), where the decoder looked when it chose the word: the photo dimmed but
// for the word's regions (its 7x7 weights, scaled up smoothly by the browser).
// A caption without weights (a merge model's) says why it has no maps.
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
  text.replaceChildren(...words.flatMap((word, i) => {
    const span = el("span", { className: "word", tabIndex: 0, title: "where the decoder looked for this word" }, word);
    for (const ev of ["mouseenter", "focus"]) span.addEventListener(ev, () => show(c.attention[i]));
    for (const ev of ["mouseleave", "blur"]) span.addEventListener(ev, () => canvas.classList.remove("on"));
    return i ? [" ", span] : [span];
  }));
  return card;
}

// The drawing page: strokes on a canvas (undo, eraser, width), or an uploaded image, through
// mnist.js (MNIST preprocessing, the model, its calibration and digit-likeness, in this page: no
// request per stroke) to an honest answer: a digit, "a or b?", "not a digit", "too small" or
// blank (answers.py's states), the calibrated bars, what the model saw and why. The same page
// runs from the server and from a folder written by `mnist-logreg export RUN --format web`
// (file:// included). model.js loads after this file: strokes drawn meanwhile are kept.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const evidence = document.getElementById("evidence").getContext("2d");
const bars = document.getElementById("bars");
const $ = id => document.getElementById(id);
let model = null, classes = [];

// The drawing is a list of items, redrawn on every change: undo pops the last one.
let items = [];             // {kind: "stroke", color, width, points} or {kind: "image", bitmap, name, grey}
let stroke = null, pointerId = null, multiTouch = false, eraser = false;
let current = null;         // the answer shown

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  for (const it of items) {
    if (it.kind === "failed") { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height); continue; }
    if (it.kind === "image") {  // an upload replaces what was drawn before (undo brings it back)
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, pad.width, pad.height);
      const s = Math.min(pad.width / it.bitmap.width, pad.height / it.bitmap.height);
      const w = it.bitmap.width * s, h = it.bitmap.height * s;
      ctx.drawImage(it.bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      continue;
    }
    ctx.strokeStyle = ctx.fillStyle = it.color;
    ctx.lineWidth = it.width; ctx.lineCap = "round"; ctx.lineJoin = "round";
    const [p0, ...rest] = it.points;
    ctx.beginPath();
    if (!rest.length) { ctx.arc(p0.x, p0.y, it.width / 2, 0, 2 * Math.PI); ctx.fill(); continue; }
    ctx.moveTo(p0.x, p0.y);
    rest.forEach(p => ctx.lineTo(p.x, p.y));
    ctx.stroke();
  }
  $("prompt").hidden = items.length > 0;
}

function buildBars() {
  bars.innerHTML = "";
  bars.style.setProperty("--rows", Math.ceil(classes.length / 2));  // two columns on a phone
  classes.forEach(c => {
    const row = document.createElement("div");
    row.className = "bar";
    row.setAttribute("role", "listitem");
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
    row.querySelector(".name").textContent = c;
    bars.appendChild(row);
  });
  $("against").innerHTML = "";
  const sel = $("teach-label");
  sel.innerHTML = "<option value=\"\">choose</option>";
  classes.forEach((c, i) => { const o = document.createElement("option"); o.value = String(i); o.textContent = c; sel.appendChild(o); });
}

function drawGrey(g, x) {
  const img = g.createImageData(28, 28);
  for (let k = 0; k < 784; k++) {
    const v = x ? Math.round(255 * Math.min(1, Math.max(0, x[k]))) : 0;
    img.data[4 * k] = img.data[4 * k + 1] = img.data[4 * k + 2] = v;
    img.data[4 * k + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

// The evidence map over what the model saw: red where a pixel counts for the answer, blue where
// it counts for the class compared, the stronger the more opaque
function drawEvidence(a) {
  const img = evidence.createImageData(28, 28);
  let map = null;
  if (a && a.seen && a.label !== undefined) {
    const against = $("against").value === "" ? a.runnerUp : +$("against").value;
    map = Mnist.explain(model, a.seen, a.label, against).map;
  }
  const top = map ? Math.max(...map.map(Math.abs)) || 1 : 1;
  for (let k = 0; k < 784; k++) {
    const base = a && a.seen ? 40 + 60 * Math.min(1, Math.max(0, a.seen[k])) : 0;
    const t = map ? Math.min(1, Math.abs(map[k]) / top) : 0;
    const [r, g, b] = !map || map[k] >= 0 ? [220, 40, 40] : [40, 90, 230];
    img.data[4 * k] = Math.round(base * (1 - t) + r * t);
    img.data[4 * k + 1] = Math.round(base * (1 - t) + g * t);
    img.data[4 * k + 2] = Math.round(base * (1 - t) + b * t);
    img.data[4 * k + 3] = 255;
  }
  evidence.putImageData(img, 0, 0);
}

function fillAgainst(a) {
  const sel = $("against"), keep = sel.value;
  sel.innerHTML = "";
  if (!a || a.label === undefined) { sel.disabled = true; return; }
  sel.disabled = false;
  const auto = document.createElement("option");
  auto.value = ""; auto.textContent = `${classes[a.runnerUp]} (the runner-up)`;
  sel.appendChild(auto);
  classes.forEach((c, i) => {
    if (i === a.label) return;
    const o = document.createElement("option");
    o.value = String(i); o.textContent = c;
    sel.appendChild(o);
  });
  sel.value = keep !== "" && +keep !== a.label && keep < classes.length ? keep : "";
}

const pct = p => `${(100 * p).toFixed(1)}%`;

// The big answer, its confidence line, the bars and the pictures, for one state
function show(a, announce) {
  const state = a ? a.state : "empty";
  current = a;
  $("result").dataset.state = state;
  const c = i => classes[i];
  const has = a && a.probabilities;
  $("predicted").textContent = {
    digit: () => c(a.label), unsure: () => `${c(a.label)} or ${c(a.runnerUp)}?`,
    "not-a-digit": () => (model.noun === "digit" ? "Not a digit" : "Not one of these"),
    "too-small": () => "Too small", blank: () => "–", empty: () => "–", error: () => "–", loading: () => "–",
  }[state]();
  $("confidence").textContent = {
    digit: () => `${pct(a.probabilities[a.label])} sure`,
    unsure: () => (a.likeness !== null && a.likeness < model.rules.unusual_below
      ? `unusual for a ${model.noun}` : `${pct(a.probabilities[a.label])} or ${pct(a.probabilities[a.runnerUp])}`),
    "not-a-digit": () => `closest: ${c(a.label)}`,
  }[state]?.() ?? "";
  bars.querySelectorAll(".bar").forEach((row, i) => {
    const p = has ? a.probabilities[i] : 0;
    row.classList.toggle("top", !!has && i === a.label);
    row.querySelector(".fill").style.width = pct(p);
    row.querySelector(".pct").textContent = pct(p);
  });
  $("likeness").textContent = a && a.likeness !== undefined && a.likeness !== null
    ? `Digit-likeness ${pct(a.likeness)}: more typical than ${pct(a.likeness)} of the real ` +
      `${model.noun === "digit" ? "digits" : "images"} it learned from` : (a && has && model.trust === null ? "No calibration or digit-likeness in this model: the bars are its plain softmax" : "");
  drawGrey(seen, a && a.seen ? a.seen : null);
  fillAgainst(a && a.label !== undefined && a.seen ? a : null);
  drawEvidence(a);
  $("evidence-label").textContent = a && a.label !== undefined && a.seen
    ? `Why ${c(a.label)}: red pixels count for it, blue for` : "Why: red pixels count for the answer, blue for";
  if (announce) { $("teach-label").value = ""; $("teach-status").textContent = ""; }  // a new answer
  showTeach(a);
  const status = $("status");
  status.classList.toggle("error", state === "error");
  status.classList.toggle("quiet", state === "digit");  // said aloud, not shown (the digit shows it); its room kept
  if (announce || state === "error" || state === "empty") status.textContent = a && a.message ? sentence(a) : "";
}

function sentence(a) {  // an answer as a sentence; an error keeps its file name as it is
  const m = a.message;
  return a.state === "error" ? m + "." : m.charAt(0).toUpperCase() + m.slice(1) + ".";
}

function answerFor(grey, w, h, polarity) {
  try { return Mnist.answer(model, grey, w, h, polarity); } catch (e) {
    if (e instanceof Mnist.ImageError) return { state: "error", message: e.message };
    throw e;
  }
}

// The pad as drawn (dark ink on white paper: its polarity is known), or, while an upload is
// shown untouched, the uploaded image itself. While the pen is down, "too small" is not said:
// every drawing starts small.
function predict(announce, drawing) {
  if (!model) return;
  const last = items[items.length - 1];
  if (!items.length || last.kind === "failed") return show(null, announce);
  let a;
  if (last.kind === "image") a = answerFor(last.grey, last.w, last.h, "auto");
  else {
    const grey = Mnist.greyFromRGBA(ctx.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
    a = answerFor(grey, pad.width, pad.height, "dark-on-light");
    if (a.state === "blank") a.message = grey.reduce((s, v) => s + v, 0) < 128 * grey.length
      ? "the pad is covered in ink: clear it and draw one digit" : "the pad is blank";
  }
  if (drawing && a.state === "too-small") return;
  show(a, announce);
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
}

const down = new Set();  // the pointers now on the pad
pad.addEventListener("pointerdown", e => {
  if (e.button !== 0) return;                 // right and middle clicks do not draw
  down.add(e.pointerId);
  if (down.size > 1) {                        // a second finger: a pinch or a palm, not a stroke
    multiTouch = true;
    if (stroke) { items.pop(); stroke = null; pointerId = null; redraw(); predict(true); }
    return;
  }
  if (multiTouch) return;
  e.preventDefault();
  pointerId = e.pointerId;
  pad.setPointerCapture(e.pointerId);
  stroke = { kind: "stroke", color: eraser ? "#fff" : "#000", width: +$("width").value, points: [point(e)] };
  items.push(stroke);
  $("source").textContent = "";
  redraw();
  predict(false, true);
});
let frame = 0;  // at most one live prediction per displayed frame
pad.addEventListener("pointermove", e => {
  if (e.pointerId !== pointerId || !stroke) return;
  stroke.points.push(point(e));
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (!stroke) return;
    redraw();
    predict(false, true);  // live: the bars follow the pen
  });
});
function endPointer(e) {
  down.delete(e.pointerId);
  if (e.pointerId === pointerId) {
    pointerId = null;
    if (stroke) { stroke = null; redraw(); predict(true); }
  }
  if (!down.size) multiTouch = false;
}
["pointerup", "pointercancel"].forEach(t => window.addEventListener(t, endPointer));
pad.addEventListener("contextmenu", e => e.preventDefault());

function undo() {
  if (!items.length) return;
  items.pop();
  const last = items[items.length - 1];
  $("source").textContent = last && last.kind === "image" ? `Showing the uploaded image ${last.name}` : "";
  redraw();
  predict(true);
}

function clearPad() {
  items = []; stroke = null; pointerId = null; multiTouch = false; down.clear();
  $("source").textContent = "";
  redraw();
  show(null, true);
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearPad);
$("eraser").addEventListener("click", () => {
  eraser = !eraser;
  $("eraser").setAttribute("aria-pressed", String(eraser));
});
$("against").addEventListener("change", () => { if (current) drawEvidence(current); });
document.addEventListener("keydown", e => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
});

// An upload is shown in the pad (plainly labelled) and read at its own resolution, as the
// Python preprocessing reads a file, with the same limits and messages (checked from the
// file's header, before it is decoded). A failed upload clears the pad, so that no old drawing
// stands beside the error; undo brings back what was there. Large pictures are read in strips
// (never a full-size grey copy) while the page says it is busy.
async function upload(file) {
  busy(`Reading ${file.name}…`);
  await new Promise(r => requestAnimationFrame(() => setTimeout(r)));  // let the busy state paint
  let bitmap = null;
  let refused = Mnist.refusal(file.name, file.size, Mnist.imageSize(new Uint8Array(await file.slice(0, 1 << 16).arrayBuffer())));
  if (!refused) {
    try { bitmap = await createImageBitmap(file); } catch (e) { refused = `${file.name}: not an image this browser can read`; }
  }
  if (bitmap && !refused) refused = Mnist.refusal(file.name, file.size, [bitmap.width, bitmap.height]);
  document.body.classList.remove("busy");
  if (refused) {
    items.push({ kind: "failed" });
    redraw();
    show({ state: "error", message: refused }, true);
    return;
  }
  const { grey, w, h } = readGrey(bitmap);
  items.push({ kind: "image", bitmap, name: file.name, grey, w, h });
  $("source").textContent = `Showing the uploaded image ${file.name}`;
  redraw();
  const a = answerFor(grey, w, h, "auto");
  if (a.state === "blank") a.message = `${file.name}: blank image (no ink found)`;
  show(a, true);
}

function busy(text) {
  document.body.classList.add("busy");
  $("status").classList.remove("quiet", "error");
  $("status").textContent = text;
}

// The picture's grey levels (preprocess.load_image): transparency onto contrasting paper, and
// a picture over WORK_SIZE box-reduced as Pillow's reduce() does, strip by strip (two passes:
// the paper is decided over the whole picture first)
function readGrey(bitmap) {
  const w = bitmap.width, h = bitmap.height, f = Math.ceil(Math.max(w, h) / Mnist.WORK_SIZE);
  const rows = f === 1 ? h : f * Math.max(1, Math.floor(4e6 / (w * f)));
  const c = document.createElement("canvas");
  c.width = w; c.height = Math.min(rows, h);
  const g = c.getContext("2d", { willReadFrequently: true });
  const strip = y0 => {
    const n = Math.min(rows, h - y0);
    g.clearRect(0, 0, w, c.height);
    g.drawImage(bitmap, 0, y0, w, n, 0, 0, w, n);
    return { data: g.getImageData(0, 0, w, n).data, n };
  };
  if (f === 1) return { grey: Mnist.greyFromRGBA(strip(0).data, w, h), w, h };
  const stats = { inked: 0, weight: 0, transparent: false };
  for (let y0 = 0; y0 < h; y0 += rows) {
    const { data, n } = strip(y0), s = Mnist.inkStats(data, w * n);
    stats.inked += s.inked; stats.weight += s.weight; stats.transparent ||= s.transparent;
  }
  const paper = Mnist.paperFor(stats), nw = Math.ceil(w / f), grey = new Float64Array(nw * Math.ceil(h / f));
  for (let y0 = 0; y0 < h; y0 += rows) {
    const { data, n } = strip(y0);
    grey.set(Mnist.reduce(Mnist.greyOn(data, w * n, paper), w, n, f).grey, (y0 / f) * nw);
  }
  return { grey, w: nw, h: Math.ceil(h / f) };
}

$("upload").addEventListener("change", e => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) upload(file);
});

// -- "Wrong? It was ...": the input the model read and the right label, saved by the server
// (serve --collect DIR) or, on the static site, in this browser until "Download my examples"
// writes the folder train --extra-images reads (examples.py's layout, as a zip) ------------
const STORE = "mnist-logreg-examples", STORE_MAX = 2000;  // ~1 KB each: well inside the browser's 5 MB
const stored = () => { try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch (e) { return []; } };

function showTeach(a) {
  const where = model && model.examples;
  $("teach").hidden = !where || !a || !a.input || a.state === "error";
  $("download").hidden = where !== "browser" || !stored().length;
  if (where === "browser") $("download").textContent = `Download my examples (${stored().length})`;
}

async function saveExample() {
  const a = current, label = $("teach-label").value, status = $("teach-status");
  if (!a || !a.input || label === "") { status.textContent = "Choose what it was first."; return; }
  const pixels = Array.from(a.input, v => Math.round(v * 255) / 255);
  if (model.examples === "server") {
    try {
      const r = await fetch("api/examples", { method: "POST", headers: { "content-type": "application/json" },
                                              body: JSON.stringify({ pixels, label: +label }) });
      const body = await r.json();
      status.textContent = r.ok ? `Saved as ${classes[+label]}: thank you. It will learn from it when it is ` +
        "retrained (train --extra-images)." : `Not saved: ${body.error}`;
    } catch (e) { status.textContent = "Not saved: the server did not answer."; }
    return;
  }
  const all = stored();
  if (all.length >= STORE_MAX) { status.textContent = `Not saved: ${STORE_MAX} examples is this page's limit; download them first.`; return; }
  all.push({ pixels: btoa(String.fromCharCode(...pixels.map(v => Math.round(v * 255)))), label: +label,
             saved: new Date().toISOString().slice(0, 19) + "+00:00" });
  try { localStorage.setItem(STORE, JSON.stringify(all)); } catch (e) { status.textContent = "Not saved: this browser's storage is full."; return; }
  status.textContent = `Saved as ${classes[+label]} in this browser (${all.length}); download them to train with them.`;
  showTeach(current);
}

async function downloadExamples() {
  const all = stored(), files = [], lines = ["file,label,saved"];
  const c = document.createElement("canvas");
  c.width = c.height = 28;
  const g = c.getContext("2d");
  for (let k = 0; k < all.length; k++) {
    const e = all[k], img = g.createImageData(28, 28), px = atob(e.pixels);
    for (let i = 0; i < 784; i++) {
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = px.charCodeAt(i); img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    const name = `${e.saved.slice(0, 19).replace(/[-:]/g, "")}-${String(k).padStart(5, "0")}.png`;
    const blob = await new Promise(r => c.toBlob(r, "image/png"));
    files.push([`my-examples/${name}`, new Uint8Array(await blob.arrayBuffer())]);
    lines.push(`${name},${e.label},${e.saved}`);
  }
  files.unshift(["my-examples/labels.csv", new TextEncoder().encode(lines.join("\n") + "\n")]);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([zip(files)], { type: "application/zip" }));
  link.download = "my-examples.zip";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// A zip of stored (uncompressed) files: local headers, the central directory, its end
function zip(files) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = d => { let c = 0xffffffff; for (const b of d) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const parts = [], central = [];
  let offset = 0;
  const le = (n, bytes) => Array.from({ length: bytes }, (_, i) => (n >>> (8 * i)) & 0xff);
  for (const [name, data] of files) {
    const n = new TextEncoder().encode(name), crc = crc32(data);
    // version 2.0, no flags, stored, 00:00 on 1980-01-01, CRC, sizes, name length, no extra field
    const common = [...le(20, 2), ...le(0, 2), ...le(0, 2), ...le(0, 2), ...le(33, 2), ...le(crc, 4),
                    ...le(data.length, 4), ...le(data.length, 4), ...le(n.length, 2), ...le(0, 2)];
    const local = Uint8Array.from([...le(0x04034b50, 4), ...common, ...n]);
    central.push(Uint8Array.from([...le(0x02014b50, 4), ...le(20, 2), ...common, ...le(0, 2), ...le(0, 2), ...le(0, 2),
                                  ...le(0, 4), ...le(offset, 4), ...n]));
    parts.push(local, data);
    offset += local.length + data.length;
  }
  const size = central.reduce((s, c) => s + c.length, 0);
  const end = Uint8Array.from([...le(0x06054b50, 4), ...le(0, 4), ...le(files.length, 2), ...le(files.length, 2),
                               ...le(size, 4), ...le(offset, 4), ...le(0, 2)]);
  return new Blob([...parts, ...central, end]);
}

$("teach-save").addEventListener("click", saveExample);
$("download").addEventListener("click", downloadExamples);

// -- the model: model.js loads after this file -------------------------------------------
function modelReady() {
  model = window.MNIST_MODEL || null;
  document.body.classList.remove("loading");
  if (!model) {
    $("model-info").textContent = "The model did not load.";
    show({ state: "error", message: "The model did not load (model.js is missing or broken)" }, true);
    return;
  }
  classes = model.classes || ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
  const acc = model.metrics && model.metrics.test_acc;
  $("model-info").textContent = `A linear model trained on ${model.dataset}` +
    (acc ? `, ${(100 * acc).toFixed(1)}% right on its test images` : "") +
    (model.trust ? "; it says when it is unsure or when a drawing is not a digit" : "");
  if (model.transform !== "none") $("seen-label").textContent = `What the model saw (28×28, after ${model.transform})`;
  buildBars();
  showLinks(model.links || {});
  predict(true);  // whatever was drawn while the model loaded
}

function showLinks(links) {  // the API's documentation (served) and the run's report, when there are
  const p = $("links");
  p.textContent = "";
  [["docs", "The REST API and its documentation"], ["report", "This model's report: how it was trained and how well it does"]]
    .filter(([k]) => links[k]).forEach(([k, text], i) => {
      if (i) p.append(" · ");
      const a = document.createElement("a");
      a.href = links[k]; a.textContent = text;
      p.append(a);
    });
}

const script = $("model-script");
if (window.MNIST_MODEL) modelReady();
else {
  script.addEventListener("load", modelReady);
  script.addEventListener("error", modelReady);
}
redraw();
show({ state: "loading", message: "" }, false);

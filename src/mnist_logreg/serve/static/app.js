// The drawing page: strokes on a canvas (undo, eraser, width), or an uploaded image, through
// mnist.js (MNIST preprocessing and the model, in this page: no request per stroke), to the
// bars and the 28x28 the model reads. The same page runs from the server and from a folder
// written by `mnist-logreg export RUN --format web` (file:// included).
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const $ = id => document.getElementById(id);
const model = window.MNIST_MODEL;
const classes = (model && model.classes) || ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const MIN_INK_SIDE = 0.15;  // a drawing smaller than this fraction of the pad: "draw a larger digit"
const SURE = 0.5;           // below this probability for the top class: "not sure: a or b?"

// The drawing is a list of items, redrawn on every change: undo pops the last one.
let items = [];             // {kind: "stroke", color, width, points} or {kind: "image", bitmap, name, grey}
let stroke = null, pointerId = null, multiTouch = false, eraser = false;

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  for (const it of items) {
    if (it.kind === "image") {
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
}

function buildBars() {
  bars.innerHTML = "";
  classes.forEach(c => {
    const row = document.createElement("div");
    row.className = "bar";
    row.setAttribute("role", "listitem");
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
    row.querySelector(".name").textContent = c;
    bars.appendChild(row);
  });
}

function drawSeen(x) {
  const img = seen.createImageData(28, 28);
  for (let k = 0; k < 784; k++) {
    const g = x ? Math.round(255 * Math.min(1, Math.max(0, x[k]))) : 0;
    img.data[4 * k] = img.data[4 * k + 1] = img.data[4 * k + 2] = g;
    img.data[4 * k + 3] = 255;
  }
  seen.putImageData(img, 0, 0);
}

// state: {kind: "empty" | "small" | "error" | "unsure" | "sure", message, result}
function show(state, announce) {
  const rows = bars.querySelectorAll(".bar");
  const r = state.result;
  $("predicted").textContent = state.kind === "sure" ? classes[r.label] : state.kind === "unsure" ? "?" : "–";
  $("confidence").textContent = r && state.kind !== "error" ? `${(100 * r.probabilities[r.label]).toFixed(1)}%` : "";
  rows.forEach((row, i) => {
    const p = r ? r.probabilities[i] : 0;
    row.classList.toggle("top", !!r && i === r.label);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
  });
  drawSeen(r ? r.input : null);
  const status = $("status");
  status.classList.toggle("error", state.kind === "error");
  status.classList.toggle("visually-hidden", state.kind === "sure");  // said aloud; the digit shows it
  if (announce || state.kind === "error" || state.kind === "empty") status.textContent = state.message || "";
}

function classify(grey, w, h) {
  if (!model) return { kind: "error", message: "The model did not load (model.js is missing or broken)." };
  let x;
  try { x = Mnist.preprocess(grey, w, h); } catch (e) {
    if (e instanceof Mnist.ImageError) return { kind: "empty", message: "" };
    throw e;
  }
  const { input, probabilities } = Mnist.predict(model, x);
  const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  const result = { label: order[0][1], probabilities, input };
  if (order[0][0] < SURE) {
    const [a, b] = [classes[order[0][1]], classes[order[1][1]]];
    return { kind: "unsure", result, message: `Not sure: ${a} or ${b}?` };
  }
  return { kind: "sure", result, message: `Prediction: ${classes[result.label]}, ${(100 * order[0][0]).toFixed(1)}%` };
}

// The pad as drawn, or, while an upload is shown untouched, the uploaded image itself
function predict(announce) {
  const last = items[items.length - 1];
  if (last && last.kind === "image") return show(classify(last.grey, last.w, last.h), announce);
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  const grey = Mnist.greyFromRGBA(data, pad.width, pad.height);
  let y0 = pad.height, y1 = -1, x0 = pad.width, x1 = -1;
  for (let y = 0; y < pad.height; y++) for (let x = 0; x < pad.width; x++) {
    if (grey[y * pad.width + x] < 128) { y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
  }
  if (y1 < 0) return show({ kind: "empty", message: items.length ? "The pad is blank." : "" }, announce);
  if (Math.max(y1 - y0, x1 - x0) + 1 < MIN_INK_SIDE * pad.width) {
    return show({ kind: "small", message: "Draw a larger digit: this is too small to read." }, true);
  }
  show(classify(grey, pad.width, pad.height), announce);
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
  predict(false);
});
let frame = 0;  // at most one live prediction per displayed frame (about 15 ms each here)
pad.addEventListener("pointermove", e => {
  if (e.pointerId !== pointerId || !stroke) return;
  stroke.points.push(point(e));
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (!stroke) return;
    redraw();
    predict(false);  // live: the bars follow the pen
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
  $("source").textContent = items.length && items[items.length - 1].kind === "image" ? $("source").dataset.name : "";
  redraw();
  predict(true);
}

function clearPad() {
  items = []; stroke = null; pointerId = null; multiTouch = false; down.clear();
  $("source").textContent = "";
  redraw();
  show({ kind: "empty", message: "" }, true);
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearPad);
$("eraser").addEventListener("click", () => {
  eraser = !eraser;
  $("eraser").setAttribute("aria-pressed", String(eraser));
});
document.addEventListener("keydown", e => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
});

// An upload is shown in the pad (plainly labelled) and read at its own resolution, as the
// Python preprocessing reads a file; drawing on it makes the pad the input again.
async function upload(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    show({ kind: "error", message: `${file.name}: not an image this browser can read.` }, true);
    return;
  }
  const c = document.createElement("canvas");
  c.width = bitmap.width; c.height = bitmap.height;
  const g = c.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);  // transparency onto white
  g.drawImage(bitmap, 0, 0);
  const grey = Mnist.greyFromRGBA(g.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
  items = [{ kind: "image", bitmap, name: file.name, grey, w: c.width, h: c.height }];
  $("source").dataset.name = $("source").textContent = `Showing the uploaded image ${file.name}`;
  redraw();
  const state = classify(grey, c.width, c.height);
  show(state.kind === "empty" ? { kind: "error", message: `${file.name}: blank image (no ink found).` } : state, true);
}
$("upload").addEventListener("change", e => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) upload(file);
});

if (model) {
  const acc = model.metrics && model.metrics.test_acc;
  $("model-info").textContent = `${model.dataset} · one nn.Linear(784, 10), ${model.parameters.toLocaleString("en")} ` +
    `parameters · transform: ${model.transform}` + (acc ? ` · test accuracy ${(100 * acc).toFixed(2)}%` : "");
  if (model.transform !== "none") $("seen-label").textContent = `What the model saw (28×28, after ${model.transform})`;
}
buildBars();
clearPad();
if (!model) show({ kind: "error", message: "The model did not load (model.js is missing or broken)." }, true);

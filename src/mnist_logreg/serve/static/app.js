// Drawing pad -> POST /api/predict (PNG upload) -> probabilities and the 28x28 the model saw.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
let drawing = false, last = null, pending = false, again = false, inked = false;
// Clear and upload start a new generation: an answer to a request of an older one is stale
// (it answers a drawing that is gone) and is dropped; the request itself is aborted.
let generation = 0, inflight = null;

function newGeneration() {
  generation += 1;
  if (inflight) { inflight.abort(); inflight = null; }
}

function clearPad() {
  newGeneration();
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  showResult(null);
}

function buildBars() {
  bars.innerHTML = "";
  classes.forEach((c, i) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.setAttribute("role", "listitem");
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct">0%</span>`;
    row.querySelector(".name").textContent = c;
    row.dataset.index = i;
    bars.appendChild(row);
  });
}

function showResult(r) {
  document.getElementById("error").textContent = "";
  const rows = bars.querySelectorAll(".bar");
  if (!r) {
    document.getElementById("predicted").textContent = "–";
    document.getElementById("confidence").textContent = "";
    rows.forEach(row => { row.classList.remove("top"); row.querySelector(".fill").style.width = "0"; row.querySelector(".pct").textContent = "0%"; });
    seen.fillStyle = "#000"; seen.fillRect(0, 0, 28, 28);
    return;
  }
  document.getElementById("predicted").textContent = r.class_name;
  document.getElementById("confidence").textContent = `${(100 * r.probabilities[r.label]).toFixed(1)}%`;
  rows.forEach((row, i) => {
    const p = r.probabilities[i];
    row.classList.toggle("top", i === r.label);
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
  });
  const img = seen.createImageData(28, 28);
  r.preprocessed.flat().forEach((v, k) => {
    const g = Math.round(255 * v);
    img.data[4 * k] = img.data[4 * k + 1] = img.data[4 * k + 2] = g;
    img.data[4 * k + 3] = 255;
  });
  seen.putImageData(img, 0, 0);
}

async function send(blob, name, signal) {
  const form = new FormData();
  form.append("image", blob, name);
  const res = await fetch("/api/predict", { method: "POST", body: form, signal });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// At most one request in flight; if the drawing changed meanwhile, send once more after.
function predictNow() {
  if (!inked) return;
  if (pending) { again = true; return; }
  pending = true;
  const gen = generation, ctl = new AbortController();
  inflight = ctl;
  pad.toBlob(async blob => {
    try {
      const r = await send(blob, "drawing.png", ctl.signal);
      if (gen === generation) showResult(r);
    } catch (e) {
      if (gen === generation && e.name !== "AbortError") document.getElementById("error").textContent = e.message;
    } finally {
      if (inflight === ctl) inflight = null;
      pending = false;
      if (again) { again = false; predictNow(); }
    }
  }, "image/png");
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
}

pad.addEventListener("pointerdown", e => {
  drawing = true; last = point(e); pad.setPointerCapture(e.pointerId);
  ctx.beginPath(); ctx.arc(last.x, last.y, 9, 0, 2 * Math.PI); ctx.fillStyle = "#000"; ctx.fill();
  inked = true;
});
pad.addEventListener("pointermove", e => {
  if (!drawing) return;
  const p = point(e);
  ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
  last = p;
  predictNow();  // live: the bars follow the pen
});
["pointerup", "pointercancel"].forEach(t => pad.addEventListener(t, () => { if (drawing) { drawing = false; predictNow(); } }));

document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", async e => {
  const file = e.target.files[0];
  if (!file) return;
  newGeneration();
  const gen = generation, ctl = new AbortController();
  inflight = ctl;
  try {
    const r = await send(file, file.name, ctl.signal);
    if (gen === generation) showResult(r);
  } catch (err) {
    if (gen === generation && err.name !== "AbortError") document.getElementById("error").textContent = err.message;
  }
  e.target.value = "";
});

fetch("/api/model").then(r => r.json()).then(info => {
  classes = info.classes;
  buildBars();
  const acc = info.metrics && info.metrics.test_acc;
  document.getElementById("model-info").textContent =
    `${info.dataset} · one nn.Linear(784, 10), ${info.parameters.toLocaleString()} parameters` +
    (acc ? ` · test accuracy ${(100 * acc).toFixed(2)}%` : "");
}).catch(() => {});

buildBars();
clearPad();

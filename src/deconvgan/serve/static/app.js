// The page of `deconvgan serve`: plain JavaScript against the /v1 API, no build step, no network beyond
// this server. State lives in `state`; every request goes through api() (bearer token from #token=...,
// errors shown from the server's detail.message). body[data-pending] counts requests and debounced
// renders in flight (0 when the page is idle), which the browser test waits on.
"use strict";

const PAGE = 16; // seeds per page
const FRAMES = 8; // interpolation frames per pair of seeds
const MAX_SELECTED = 6;
const TILE = 256; // screen pixels per map tile
const MAX_DIRECTIONS = 8;
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get("token");

const state = {
  models: [], model: null, page: 0, selected: [], seed: 0, truncation: null, classId: "",
  directions: null, offsets: [], latents: new Map(), frames: [], frame: null,
  map: { z: 0, ox: 0, oy: 0, tiles: new Map() },
};

// ---- requests, errors, pending count -------------------------------------------------------------
let pending = 0;
function busy(delta) {
  pending += delta;
  document.body.dataset.pending = String(pending);
}

async function tracked(fn) {
  busy(1);
  try {
    return await fn();
  } finally {
    busy(-1);
  }
}

async function errorMessage(response) {
  try {
    const { detail } = await response.json();
    if (detail && detail.message) return detail.message;
    if (Array.isArray(detail) && detail.length) return detail[0].msg;
    if (typeof detail === "string") return detail;
  } catch { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

// The body of a request (read = "json" or "blob"), counted as pending until it is read. A failed request
// throws an Error with the server's message and the HTTP status.
async function api(url, read = "json", options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return tracked(async () => {
    const response = await fetch(url, { ...options, headers });
    if (!response.ok) throw Object.assign(new Error(await errorMessage(response)), { status: response.status });
    return response[read]();
  });
}

// POST JSON, leaving out the fields that are null (the server's defaults).
const post = (url, body, read) => api(url, read, {
  method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null))),
});

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
  status.setAttribute("role", isError ? "alert" : "status");
}
const fail = (error) => say(error.message || String(error), true);

// Run `fn` once the calls stop for `ms`; counted as pending while armed.
function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer === null) busy(1); else clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      busy(-1);
      Promise.resolve().then(fn).catch(fail);
    }, ms);
  };
}

// An <img> (or a CSS background) showing `url`: the URL itself, so the browser caches it; with a token,
// a blob fetched with the Authorization header. Load errors are reported with the server's message.
const objectURLs = new WeakMap();
async function showURL(element, url, asBackground = false) {
  let src = url;
  if (token) {
    src = URL.createObjectURL(await api(url, "blob"));
    const old = objectURLs.get(element);
    if (old) URL.revokeObjectURL(old);
    objectURLs.set(element, src);
  }
  if (asBackground) element.style.backgroundImage = `url("${src}")`;
  else element.src = src;
}
async function reportImageError(event) {
  const url = event.target.src;
  if (!url || url.startsWith("blob:")) return;
  const response = await fetch(url);
  if (!response.ok) say(await errorMessage(response), true);
}

// ---- URLs ----------------------------------------------------------------------------------------
const modelURL = () => `v1/models/${encodeURIComponent(state.model.name)}`;
function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== "") q.set(key, value);
  const text = q.toString();
  return text ? `?${text}` : "";
}
const isTexture = () => state.model.kind === "texture";
const common = () => (isTexture() ? {} : { truncation: state.truncation, class: state.classId });
const imageURL = (seed) => `${modelURL()}/images/${seed}.png${query(common())}`;
const displaySize = (px, target) => px * Math.max(1, Math.round(target / px));

// ---- models --------------------------------------------------------------------------------------
async function loadModels() {
  const { models } = await api("v1/models");
  state.models = models;
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.kind})`, m.name)));
  if (!models.length) throw new Error("this server has no models");
  await chooseModel(models[0].name);
}

async function chooseModel(name) {
  const m = state.models.find((x) => x.name === name);
  state.model = m;
  Object.assign(state, { page: 0, selected: [], seed: 0, directions: null, offsets: [], frames: [], frame: null });
  state.latents.clear();
  $("model-info").textContent = [m.kind, `${m.resolution} px`, m.channels === 1 ? "grayscale" : "RGB",
    m.kind === "image" ? `latent ${m.latent_dim}` : null, `${Number(m.kimg).toFixed(1)} kimg`, m.dataset,
    m.tileable ? "tileable" : null, m.backend].filter(Boolean).join(" · ");
  document.documentElement.style.setProperty("--thumb", `${displaySize(m.resolution, 72)}px`);
  $("current").width = $("current").height = displaySize(m.resolution, 256);
  $("truncation-row").hidden = isTexture();
  $("class-row").hidden = !(m.num_classes > 0);
  $("class").replaceChildren(new Option("by seed (seed mod classes)", ""),
    ...(m.class_names || []).map((c, i) => new Option(`${i}: ${c}`, String(i))));
  state.classId = "";
  $("texture-panel").hidden = $("repeat-panel").hidden = !isTexture();
  $("interp").hidden = true;
  $("directions-panel").hidden = true;
  $("seeds-hint").textContent = isTexture() ? "Click a seed to explore its texture."
    : "Click seeds to select them: two or more give an interpolation.";
  say("");
  renderGrid();
  const work = [renderCurrent()];
  if (isTexture()) resetMap(); else work.push(loadDirections());
  await Promise.all(work);
}

// ---- the seed grid -------------------------------------------------------------------------------
function renderGrid() {
  const first = state.page * PAGE;
  $("page-label").textContent = `seeds ${first}–${first + PAGE - 1}`;
  $("prev").disabled = state.page === 0;
  const buttons = [];
  for (let seed = first; seed < first + PAGE; seed++) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "seed";
    button.dataset.seed = String(seed);
    const img = document.createElement("img");
    img.className = "pixelated";
    img.alt = `seed ${seed}`;
    img.addEventListener("error", (e) => reportImageError(e).catch(fail));
    showURL(img, imageURL(seed)).catch(fail);
    const label = document.createElement("span");
    label.textContent = String(seed);
    button.append(img, label);
    buttons.push(button);
  }
  $("grid").replaceChildren(...buttons);
  updateSelection();
}

function toggleSeed(seed) {
  const at = state.selected.indexOf(seed);
  if (isTexture()) state.selected = at >= 0 ? [] : [seed];
  else if (at >= 0) state.selected.splice(at, 1);
  else {
    state.selected.push(seed);
    if (state.selected.length > MAX_SELECTED) state.selected.shift();
  }
  updateSelection();
  if (at < 0) showSeed(seed);
  if (!isTexture()) interpolateSoon();
}

function showSeed(seed) {
  state.seed = seed;
  state.frame = null;
  updateSelection();
  renderCurrentSoon();
  if (isTexture()) resetMap();
}

function updateSelection() {
  for (const button of $("grid").children) {
    const seed = Number(button.dataset.seed);
    button.setAttribute("aria-pressed", String(state.selected.includes(seed)));
    button.setAttribute("aria-current", String(seed === state.seed));
  }
  const n = state.selected.length;
  $("selection").textContent = n ? `selected: ${state.selected.join(", ")}` : "";
  $("clear").disabled = n === 0;
}

// ---- the current image: a seed (+ direction offsets) or an interpolation frame -----------------
let renderCount = 0;
async function drawCurrent() {
  const ticket = ++renderCount;
  let blob;
  let name;
  if (state.frame !== null) {
    blob = await (await fetch(state.frames[state.frame])).blob(); // a data: URL, no network
    name = `interpolation-${state.selected.join("-")}-frame${state.frame}.png`;
  } else if (state.offsets.some((v) => v !== 0)) {
    const latent = await offsetLatent();
    const body = { latents: [latent], format: "png", class: labelFor(state.seed) };
    blob = await post(`${modelURL()}/images`, body, "blob");
    name = `seed-${state.seed}-edited.png`;
  } else {
    blob = await api(imageURL(state.seed), "blob");
    name = `seed-${state.seed}.png`;
  }
  if (ticket !== renderCount) return; // a newer render started meanwhile
  highlightFrame();
  const url = URL.createObjectURL(blob);
  const img = $("current");
  const old = img.dataset.url;
  img.src = url;
  img.dataset.url = url;
  img.alt = name.replace(/\.png$/, "").replaceAll("-", " ");
  $("caption").textContent = name.replace(/\.png$/, "");
  const link = $("download");
  link.href = url;
  link.download = name;
  link.removeAttribute("aria-disabled");
  if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
}
// Counted as pending from the start to the image on the page (not only while requests are open).
const renderCurrent = () => tracked(drawCurrent);
const renderCurrentSoon = debounce(renderCurrent, 60);

// A conditional model's class for a latent with no seed to derive it from: the chosen one, else seed mod K.
function labelFor(seed) {
  if (!(state.model.num_classes > 0)) return null;
  return state.classId !== "" ? Number(state.classId) : seed % state.model.num_classes;
}

// ---- truncation and class --------------------------------------------------------------------------
function readTruncation() {
  const on = $("truncate").checked;
  state.truncation = on ? Number($("truncation").value) : null;
  $("truncation-value").textContent = on ? state.truncation.toFixed(2) : "off";
}
const refreshAll = debounce(() => {
  renderGrid();
  interpolateSoon();
  return renderCurrent();
}, 150);

// ---- interpolation -------------------------------------------------------------------------------
let interpCount = 0;
async function drawInterpolation() {
  const ticket = ++interpCount;
  const panel = $("interp");
  if (state.selected.length < 2) {
    panel.hidden = true;
    state.frames = [];
    if (state.frame !== null) { state.frame = null; await renderCurrent(); }
    return;
  }
  const body = { seeds: state.selected, frames: FRAMES, truncation: state.truncation, format: "frames",
    class: state.classId === "" ? null : Number(state.classId) };
  let frames;
  try {
    ({ frames } = await post(`${modelURL()}/interpolate`, body));
  } catch (error) {
    if (ticket === interpCount) { panel.hidden = true; state.frames = []; }
    throw error;
  }
  if (ticket !== interpCount) return;
  state.frames = frames;
  const strip = $("strip");
  strip.replaceChildren(...frames.map((src, i) => {
    const img = document.createElement("img");
    img.src = src;
    img.alt = `frame ${i}`;
    img.className = "pixelated";
    img.addEventListener("click", () => scrubTo(i));
    return img;
  }));
  const scrub = $("scrub");
  scrub.max = String(frames.length - 1);
  panel.hidden = false;
  if (state.frame !== null) scrubTo(Math.min(state.frame, frames.length - 1));
  else markFrame(Math.min(Number(scrub.value), frames.length - 1));
}
const interpolate = () => tracked(drawInterpolation);
const interpolateSoon = debounce(interpolate, 100);

function markFrame(i) {
  $("scrub").value = String(i);
  $("scrub-value").textContent = `${i} of ${Math.max(0, state.frames.length - 1)}`;
  highlightFrame();
}
// The strip marks the frame on show, if the image is one.
function highlightFrame() {
  [...$("strip").children].forEach((img, k) => img.classList.toggle("on", k === state.frame));
}
function scrubTo(i) {
  state.frame = i;
  markFrame(i);
  renderCurrent().catch(fail); // a frame already in memory: no request to debounce
}

// ---- latent directions ---------------------------------------------------------------------------
async function loadDirections() {
  let answer;
  try {
    answer = await api(`${modelURL()}/directions`);
  } catch (error) {
    if (error.status === 404) return; // a server started with --directions 0
    throw error;
  }
  const { directions, scales, explained_variance: variance } = answer;
  state.directions = { directions: directions.slice(0, MAX_DIRECTIONS), scales };
  state.offsets = state.directions.directions.map(() => 0);
  $("directions").replaceChildren(...state.directions.directions.map((_, i) => {
    const row = document.createElement("div");
    row.className = "slider";
    const label = document.createElement("label");
    label.htmlFor = `direction-${i}`;
    const share = variance && variance[i] !== undefined ? ` (${(100 * variance[i]).toFixed(0)}% of variance)` : "";
    label.textContent = `Direction ${i + 1}${share} `;
    const out = document.createElement("output");
    out.textContent = "0.0";
    label.append(out);
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id: `direction-${i}`, min: "-3", max: "3", step: "0.1", value: "0" });
    input.addEventListener("input", () => {
      state.offsets[i] = Number(input.value);
      out.textContent = state.offsets[i].toFixed(1);
      state.frame = null;
      renderCurrentSoon();
    });
    row.append(label, input);
    return row;
  }));
  $("directions-panel").hidden = state.directions.directions.length === 0;
}

async function offsetLatent() {
  const key = `${state.seed}|${state.truncation}`;
  if (!state.latents.has(key)) {
    const url = `${modelURL()}/latents${query({ seeds: String(state.seed), truncation: state.truncation })}`;
    state.latents.set(key, (await api(url)).latents[0]);
  }
  const { directions, scales } = state.directions;
  return state.latents.get(key).map((x, j) =>
    directions.reduce((sum, d, i) => sum + state.offsets[i] * scales[i] * d[j], x));
}

function resetDirections() {
  state.offsets = state.offsets.map(() => 0);
  for (const input of $("directions").querySelectorAll("input")) {
    input.value = "0";
    input.previousElementSibling.querySelector("output").textContent = "0.0";
  }
  state.frame = null;
  renderCurrentSoon();
}

// ---- the texture map: 256-px tiles of the unbounded texture, zoom z in -2..2 ----------------------
function resetMap() {
  const map = $("map");
  Object.assign(state.map, { z: 0, ox: -map.clientWidth / 2 + TILE / 2, oy: -map.clientHeight / 2 + TILE / 2 });
  for (const img of state.map.tiles.values()) img.remove();
  state.map.tiles.clear();
  renderMap();
  const side = displaySize(state.model.resolution, 96);
  const repeat = $("repeat");
  repeat.style.backgroundSize = `${side}px ${side}px`;
  repeat.style.width = repeat.style.height = `${3 * side}px`;
  $("repeat-note").textContent = state.model.tileable ? "" : "This model is not tileable: the seams show.";
  showURL(repeat, imageURL(state.seed), true).catch(fail);
}

function renderMap() {
  const map = $("map");
  const { z, ox, oy, tiles } = state.map;
  const wanted = new Set();
  const [x0, x1] = [Math.floor(ox / TILE), Math.floor((ox + map.clientWidth - 1) / TILE)];
  const [y0, y1] = [Math.floor(oy / TILE), Math.floor((oy + map.clientHeight - 1) / TILE)];
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const key = `${z}/${x}/${y}`;
      wanted.add(key);
      let img = tiles.get(key);
      if (!img) {
        img = document.createElement("img");
        img.className = "tile";
        img.alt = "";
        img.draggable = false;
        img.addEventListener("error", (e) => reportImageError(e).catch(fail));
        showURL(img, `${modelURL()}/tiles/${key}.png${query({ seed: state.seed })}`).catch(fail);
        tiles.set(key, img);
        map.append(img);
      }
      img.style.transform = `translate(${x * TILE - ox}px, ${y * TILE - oy}px)`;
    }
  }
  for (const [key, img] of tiles) if (!wanted.has(key)) { img.remove(); tiles.delete(key); }
  const scale = 2 ** z;
  $("zoom-label").textContent = `Zoom ${scale >= 1 ? scale : `1/${1 / scale}`}×.`;
}

function panMap(dx, dy) {
  state.map.ox += dx;
  state.map.oy += dy;
  renderMap();
}

// Zoom by `step` levels, keeping the texture point under (cx, cy) of the view where it is.
function zoomMap(step, cx, cy) {
  const m = state.map;
  const z = Math.max(-2, Math.min(2, m.z + step));
  if (z === m.z) return;
  const factor = 2 ** (z - m.z);
  Object.assign(m, { z, ox: (m.ox + cx) * factor - cx, oy: (m.oy + cy) * factor - cy });
  renderMap();
}

function setUpMap() {
  const map = $("map");
  let drag = null;
  map.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    map.setPointerCapture(e.pointerId);
    map.focus();
  });
  map.addEventListener("pointermove", (e) => {
    if (!drag) return;
    panMap(drag.x - e.clientX, drag.y - e.clientY);
    drag = { x: e.clientX, y: e.clientY };
  });
  const stop = () => { drag = null; };
  map.addEventListener("pointerup", stop);
  map.addEventListener("pointercancel", stop);
  let lastWheel = 0; // a touchpad sends a burst of wheel events: one zoom step per burst
  map.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (e.timeStamp - lastWheel < 200 || e.deltaY === 0) return;
    lastWheel = e.timeStamp;
    const box = map.getBoundingClientRect();
    zoomMap(e.deltaY < 0 ? 1 : -1, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  map.addEventListener("keydown", (e) => {
    const moves = { ArrowLeft: [-64, 0], ArrowRight: [64, 0], ArrowUp: [0, -64], ArrowDown: [0, 64] };
    const center = [map.clientWidth / 2, map.clientHeight / 2];
    if (moves[e.key]) panMap(...moves[e.key]);
    else if (e.key === "+" || e.key === "=") zoomMap(1, ...center);
    else if (e.key === "-" || e.key === "_") zoomMap(-1, ...center);
    else return;
    e.preventDefault();
  });
}

// ---- wiring --------------------------------------------------------------------------------------
function wire() {
  const run = (fn) => (...args) => Promise.resolve().then(() => fn(...args)).catch(fail);
  $("model").addEventListener("change", run((e) => chooseModel(e.target.value)));
  $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); renderGrid(); });
  $("next").addEventListener("click", () => { state.page += 1; renderGrid(); });
  $("grid").addEventListener("click", (e) => {
    const button = e.target.closest("button.seed");
    if (button) toggleSeed(Number(button.dataset.seed));
  });
  $("seed-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const seed = Number($("seed-input").value);
    if (!Number.isSafeInteger(seed) || seed < 0) { say("a seed is a whole number ≥ 0", true); return; }
    state.page = Math.floor(seed / PAGE);
    renderGrid();
    if (!state.selected.includes(seed)) toggleSeed(seed); else showSeed(seed);
  });
  $("clear").addEventListener("click", () => {
    state.selected = [];
    updateSelection();
    interpolateSoon();
  });
  $("truncation").addEventListener("input", () => {
    $("truncate").checked = true;
    readTruncation();
    refreshAll();
  });
  $("truncate").addEventListener("change", () => { readTruncation(); refreshAll(); });
  $("class").addEventListener("change", (e) => { state.classId = e.target.value; refreshAll(); });
  $("scrub").addEventListener("input", (e) => scrubTo(Number(e.target.value)));
  $("reset-directions").addEventListener("click", resetDirections);
  setUpMap();
  window.addEventListener("resize", () => { if (state.model && isTexture()) renderMap(); });
}

busy(0);
wire();
readTruncation();
loadModels().catch(fail);

// The listening page. It talks to the API as any client does: every call sends
// the key, kept in this browser's localStorage, as a Bearer token. Everything
// the API returns is put in the page as text (textContent), never as HTML.

import { ReadAlong } from "./reading.js";

const KEY = "chorus.apiKey";
const POLL_MS = 1000;
const ETA_AFTER = 3; // segments done before an ETA is shown: the first few say little
const FINAL = new Set(["done", "failed", "cancelled"]);
const DOWNLOADS = [ // [label, where the status document has its URL]
  ["Audiobook", (s) => s.result_url],
  ["Subtitles (SRT)", (s) => s.artefacts.srt],
  ["Subtitles (WebVTT)", (s) => s.artefacts.vtt],
  ["Manifest (JSON)", (s) => s.artefacts.manifest],
  ["Word timings (JSON)", (s) => s.artefacts.words],
];

const $ = (id) => document.getElementById(id);

let current = null; // id of the job shown
let pollTimer = null;
let nextCursor = null;
let manifest = null; // the shown job's, once asked for: {id, promise}
const readings = new Map(); // chapter index ("book" for the whole book) -> its open ReadAlong

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const headers = { ...options.headers, Authorization: `Bearer ${localStorage.getItem(KEY)}` };
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new ApiError(`The API could not be reached (${err.message}).`, 0);
  }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = typeof body?.detail === "string" ? body.detail : response.statusText;
    throw new ApiError(`${response.status}: ${detail}`, response.status);
  }
  return body;
}

// Runs an action from a button or form; any error it raises is shown in the page.
function guarded(action) {
  return async (event) => {
    event?.preventDefault();
    try {
      showError("");
      await action(event);
    } catch (err) {
      showError(err.message);
    }
  };
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function duration(seconds) {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// ETA = elapsed / done × remaining, once a few segments are done.
function eta(status) {
  const done = status.segments_done;
  const left = status.segments_total - done;
  if (status.state !== "running" || !status.started_at || done < ETA_AFTER || left <= 0) return "";
  const elapsed = (Date.now() - Date.parse(status.started_at)) / 1000;
  return `about ${duration((elapsed / done) * left)} left`;
}

function jobName(status) {
  return status.title || `Untitled job ${status.id.slice(0, 8)}`;
}

// --- the key ---------------------------------------------------------------

function showKeyState() {
  const saved = Boolean(localStorage.getItem(KEY));
  $("key-form").hidden = saved;
  $("key-saved").hidden = !saved;
  for (const id of ["submit-section", "jobs-section"]) $(id).hidden = !saved;
  if (!saved) {
    stopPolling();
    current = null;
    $("job").hidden = true;
    $("jobs").replaceChildren();
    $("voice").replaceChildren();
  }
}

async function start() {
  showKeyState();
  const voices = await api("/v1/voices");
  $("voice").replaceChildren(
    element("option", "default voice", { value: "" }),
    ...voices.map((v) => element("option", `${v.name || v.id} (${v.language}, ${v.model})`, { value: v.id })),
  );
  await loadJobs(true);
}

// --- submitting ------------------------------------------------------------

async function submitJob() {
  const file = $("book-file").files[0];
  const text = $("book-text").value;
  const fields = { voice: $("voice").value, format: $("format").value, title: $("title").value.trim() };
  const speed = Number($("speed").value);
  if (speed !== 1) fields.speed = speed; // only when asked for: 1.0 is the API's default
  for (const name of Object.keys(fields)) if (fields[name] === "") delete fields[name];

  let request;
  if (file) {
    const form = new FormData();
    form.append("file", file);
    for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
    request = { method: "POST", body: form };
  } else if (text.trim()) {
    request = { method: "POST", body: JSON.stringify({ text, ...fields }), headers: { "Content-Type": "application/json" } };
  } else {
    throw new Error("Choose a book file or paste some text.");
  }
  $("submit-button").disabled = true;
  try {
    const accepted = await api("/v1/jobs", request);
    await show(accepted.id);
    await loadJobs(true);
  } finally {
    $("submit-button").disabled = false;
  }
}

// --- one job ---------------------------------------------------------------

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

async function show(id) {
  stopPolling();
  current = id;
  $("job").dataset.id = id;
  closeReadings();
  manifest = null;
  $("chapters").replaceChildren();
  $("book-player").querySelector("audio")?.remove();
  $("book-player").querySelector(".read-along")?.remove();
  $("job").hidden = false;
  for (const row of $("jobs").querySelectorAll("button")) {
    row.toggleAttribute("aria-current", row.dataset.id === id);
  }
  await poll(id);
}

async function poll(id) {
  if (id !== current) return;
  let status;
  try {
    status = await api(`/v1/jobs/${id}`);
  } catch (err) {
    showError(err.message);
    if (err.status === 0 || err.status >= 500) pollTimer = setTimeout(() => poll(id), POLL_MS);
    return;
  }
  if (id !== current) return;
  render(status);
  updateRow(status);
  if (!FINAL.has(status.state)) pollTimer = setTimeout(() => poll(id), POLL_MS);
}

function player(url, label) {
  return element("audio", undefined, { controls: "", preload: "metadata", src: url, "aria-label": label });
}

function render(status) {
  const finished = FINAL.has(status.state);
  $("job-title").textContent = jobName(status);
  $("job-state").textContent = status.state;
  $("job-state").className = `state state-${status.state}`;
  $("job-counts").textContent = `${status.segments_done} of ${status.segments_total} segments`;
  $("job-eta").textContent = eta(status);
  $("job-progress").value = status.progress;
  $("job-error").textContent = status.error || "";
  $("job-error").hidden = !status.error;
  $("cancel-job").hidden = finished;
  $("resume-job").hidden = status.state !== "failed";
  renderChapters(status);
  // Every chapter has its own file (the book is them joined); a job without any
  // (made before chapters each had one) plays from the book's own.
  const bookPlayer = $("book-player");
  const anyChapter = status.chapters.some((c) => c.ready);
  bookPlayer.hidden = !(status.result_url && !anyChapter);
  if (!bookPlayer.hidden && !bookPlayer.querySelector("audio")) {
    bookPlayer.append(player(status.result_url, jobName(status)));
  }
  if (!bookPlayer.hidden && status.state === "done" && !bookPlayer.querySelector(".read-along")) {
    bookPlayer.append(readAlongButton(status.id, "book", bookPlayer));
  }
  $("downloads").replaceChildren(
    ...DOWNLOADS.filter(([, url]) => url(status)).map(([label, url]) => {
      const item = element("li");
      item.append(element("a", label, { href: url(status), download: "" }));
      return item;
    }),
  );
  if (!$("downloads").children.length) $("downloads").append(element("li", finished ? "Nothing to download." : "Once the book is done."));
}

// Chapter rows are kept across polls: an <audio> is made once, when its chapter
// is ready, so playback is never interrupted by the next poll.
function renderChapters(status) {
  const list = $("chapters");
  for (const chapter of status.chapters) {
    let row = list.querySelector(`li[data-index="${chapter.index}"]`);
    if (!row) {
      row = element("li", undefined, { "data-index": chapter.index });
      row.append(element("span", chapter.title || `Chapter ${chapter.index + 1}`, { class: "chapter-title" }),
        element("span", "", { class: "chapter-state" }));
      list.append(row);
    }
    let note = "being read…";
    if (chapter.segments_total) note = `${chapter.segments_done} of ${chapter.segments_total} segments`;
    if (chapter.ready) note = "ready";
    else if (status.state === "done") note = "in the whole book";
    else if (FINAL.has(status.state)) note = "not read";
    else if (status.state === "queued") note = "waiting";
    row.querySelector(".chapter-state").textContent = note;
    if (chapter.ready && chapter.url && !row.querySelector("audio")) {
      row.append(player(chapter.url, chapter.title || `Chapter ${chapter.index + 1}`));
    }
    if (status.state === "done" && row.querySelector("audio") && !row.querySelector(".read-along")) {
      row.append(readAlongButton(status.id, chapter.index, row));
    }
  }
}

// --- reading along -----------------------------------------------------------

// The manifest (texts and times of every segment) comes once a job is done,
// through the API: the page may fetch from its own origin only.
function manifestOf(id) {
  if (manifest?.id !== id) {
    manifest = { id, promise: api(`/v1/jobs/${id}/manifest`) };
    manifest.promise.catch(() => { if (manifest?.id === id) manifest = null; }); // asked again next time
  }
  return manifest.promise;
}

// A toggle under a player: its text opens below it, read along with it.
// which: a chapter's index, or "book" for the whole book's player.
function readAlongButton(id, which, holder) {
  const button = element("button", "Read along", { type: "button", class: "read-along", "aria-expanded": "false" });
  button.addEventListener("click", guarded(async () => {
    if (readings.has(which)) {
      readings.get(which).remove();
      readings.delete(which);
      button.setAttribute("aria-expanded", "false");
      return;
    }
    const book = await manifestOf(id);
    if (id !== current || readings.has(which)) return;
    const chapter = book.chapters.find((c) => c.index === which);
    const entries = which === "book" ? book.segments : book.segments.filter((s) => s.chapter === which);
    const reading = new ReadAlong(entries, holder.querySelector("audio"), chapter ? chapter.start : 0);
    reading.view.id = `reading-${which}`;
    holder.append(reading.view);
    readings.set(which, reading);
    button.setAttribute("aria-expanded", "true");
  }));
  return button;
}

function closeReadings() {
  for (const reading of readings.values()) reading.remove();
  readings.clear();
}

async function cancelJob() {
  const status = await api(`/v1/jobs/${current}`, { method: "DELETE" });
  if (status === null) {
    // It finished before the request arrived, and a finished job is deleted.
    showError("The job had already finished, so it was deleted.");
    stopPolling();
    $("job").hidden = true;
  } else {
    render(status);
    updateRow(status);
  }
  await loadJobs(true);
}

async function resumeJob() {
  await api(`/v1/jobs/${current}/resume`, { method: "POST" });
  await show(current);
}

// --- the key's jobs --------------------------------------------------------

function jobRow(status) {
  const button = element("button", undefined, { type: "button", "data-id": status.id });
  const created = new Date(status.created_at);
  button.append(element("span", jobName(status), { class: "job-name" }),
    element("span", status.state, { class: `state state-${status.state}` }),
    element("time", created.toLocaleString(), { datetime: status.created_at }));
  button.toggleAttribute("aria-current", status.id === current);
  button.addEventListener("click", guarded(() => show(status.id)));
  const item = element("li");
  item.append(button);
  return item;
}

function updateRow(status) {
  const old = $("jobs").querySelector(`button[data-id="${status.id}"]`);
  old?.parentElement.replaceWith(jobRow(status));
}

async function loadJobs(reset) {
  const params = new URLSearchParams({ limit: "20" });
  if ($("jobs-state").value) params.set("state", $("jobs-state").value);
  if (!reset && nextCursor) params.set("cursor", nextCursor);
  const page = await api(`/v1/jobs?${params}`);
  if (reset) $("jobs").replaceChildren();
  $("jobs").append(...page.jobs.map(jobRow));
  if (!$("jobs").children.length) $("jobs").append(element("li", "No jobs yet."));
  nextCursor = page.next_cursor;
  $("more-jobs").hidden = !nextCursor;
}

// --- wiring ----------------------------------------------------------------

$("key-form").addEventListener("submit", guarded(async () => {
  localStorage.setItem(KEY, $("key-input").value.trim());
  $("key-input").value = "";
  await start();
}));
$("forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY);
  showError("");
  showKeyState();
  $("key-input").focus();
});
$("submit-form").addEventListener("submit", guarded(submitJob));
$("cancel-job").addEventListener("click", guarded(cancelJob));
$("resume-job").addEventListener("click", guarded(resumeJob));
$("jobs-filter").addEventListener("submit", guarded(() => loadJobs(true)));
$("jobs-state").addEventListener("change", guarded(() => loadJobs(true)));
$("more-jobs").addEventListener("click", guarded(() => loadJobs(false)));

if (localStorage.getItem(KEY)) guarded(start)();
else showKeyState();

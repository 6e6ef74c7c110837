// The list of uploads (one row per file) and the "current upload" panel above it.
//
// Rows are built once and updated in place, so a button keeps its keyboard
// focus while the numbers beside it change; only a change of state rebuilds
// a row's buttons.

import { ApiError, api } from "./api.js";
import { formatBytes, formatRate, formatTimeLeft } from "./format.js";
import * as memory from "./upload-memory.js";
import { FileUpload, Slots } from "./uploader.js";

const $ = (id) => document.getElementById(id);

const STATE_LABELS = {
  queued: "Waiting",
  starting: "Starting",
  resuming: "Resuming",
  uploading: "Uploading",
  completing: "Finishing",
  done: "Uploaded",
  failed: "Failed",
  cancelled: "Cancelled",
  paused: "Paused",
};
const UPLOADED_STATUSES = new Set(["UPLOADED", "PROCESSING", "READY"]);

let slots = null;
let concurrency = 4;
let hooks = null;
let selected = null; // the FileUpload the panel and the job card follow
const rows = new Map(); // FileUpload or memory key → row state

/**
 * hooks: {jobStarted(upload), jobCreated(), uploadDone(upload), showError(message), openJob(jobId), chooseFiles()}
 */
export function initUploads(options) {
  ({ concurrency } = options);
  hooks = options;
  slots = new Slots(concurrency);
  $("cancel-button").addEventListener("click", () => selected?.cancel());
  // Speed and time left decay while nothing arrives; redraw them every second.
  setInterval(() => {
    for (const row of rows.values()) if (row.upload?.active) renderRow(row);
    renderPanel();
  }, 1000);
  showRememberedUploads();
}

export function startUploads(files) {
  const started = [];
  for (const file of files) {
    const key = memory.fileKey(file);
    const running = [...rows.values()].find((row) => row.upload?.active && row.key === key);
    if (running) {
      hooks.showError(`${file.name} is already uploading.`);
      continue;
    }
    // A paused row for this file gives way to the upload that resumes it.
    const paused = rows.get(key);
    if (paused) removeRow(paused);
    const upload = new FileUpload(file, { slots, concurrency });
    addRow(upload, key);
    started.push(upload);
  }
  if (started.length) select(started[0]);
  for (const upload of started) upload.start();
}

function select(upload, { showJob = true } = {}) {
  selected = upload;
  for (const row of rows.values()) row.li.classList.toggle("selected", row.upload === upload);
  renderPanel();
  if (showJob && upload.jobId) hooks.jobStarted(upload);
}

// --- rows -------------------------------------------------------------------

function makeRow(name, size) {
  const li = document.createElement("li");
  li.className = "upload-item";
  li.innerHTML = `
    <div class="upload-head"><span class="upload-name"></span><span class="upload-size"></span></div>
    <progress class="upload-progress" max="100" value="0"></progress>
    <div class="upload-line"><span class="upload-state"></span><span class="upload-stats"></span></div>
    <p class="upload-note" aria-live="polite"></p>
    <div class="upload-actions"></div>`;
  li.querySelector(".upload-name").textContent = name;
  li.querySelector(".upload-size").textContent = formatBytes(size);
  li.querySelector(".upload-progress").setAttribute("aria-label", `Upload of ${name}`);
  $("upload-list").prepend(li);
  $("uploads-empty").hidden = true;
  return li;
}

function addRow(upload, key) {
  const row = { key, upload, li: makeRow(upload.file.name, upload.file.size), shownState: null };
  rows.set(upload, row);
  let frame = 0;
  // Progress events come per network chunk; draw at most once per frame.
  upload.addEventListener("progress", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderRow(row); if (upload === selected) renderPanel(); });
  });
  upload.addEventListener("change", () => onChange(row));
  upload.addEventListener("job", () => {
    row.li.dataset.jobId = upload.jobId;
    if (upload === selected) hooks.jobStarted(upload);
    hooks.jobCreated();
  });
  renderRow(row);
}

function removeRow(row) {
  row.li.remove();
  rows.delete(row.upload || row.key);
  $("uploads-empty").hidden = rows.size > 0;
  if (row.upload && row.upload === selected) {
    selected = null;
    renderPanel();
  }
}

function onChange(row) {
  const { upload } = row;
  renderRow(row);
  if (upload === selected) renderPanel();
  if (upload.state === "failed") {
    hooks.showError(upload === selected ? upload.note : `${upload.file.name}: ${upload.note}`);
  }
  if (upload.state === "done" || upload.state === "cancelled") hooks.uploadDone(upload);
}

function percentOf(loaded, total) {
  return total > 0 ? Math.floor((loaded / total) * 100) : 0;
}

function statsText(upload) {
  const { loaded, total, rate, secondsLeft } = upload.stats();
  if (upload.state === "done") return formatBytes(total);
  const parts = [`${formatBytes(loaded)} of ${formatBytes(total)}`];
  if (rate > 0) parts.push(formatRate(rate));
  if (secondsLeft !== null && upload.state === "uploading") parts.push(formatTimeLeft(secondsLeft));
  return parts.join(" · ");
}

function renderRow(row) {
  const { upload, li } = row;
  const state = upload ? upload.state : "paused";
  li.dataset.state = state;
  if (upload) {
    const percent = upload.state === "done" ? 100 : percentOf(upload.loaded, upload.file.size);
    li.querySelector(".upload-progress").value = percent;
    li.querySelector(".upload-state").textContent = `${STATE_LABELS[state]} ${percent} %`;
    li.querySelector(".upload-stats").textContent = statsText(upload);
    li.querySelector(".upload-note").textContent = upload.note;
  }
  if (row.shownState !== state) {
    row.shownState = state;
    renderActions(row);
  }
}

function button(label, className, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = `secondary small ${className}`;
  element.textContent = label;
  element.addEventListener("click", onClick);
  return element;
}

function renderActions(row) {
  const { upload, li } = row;
  const actions = [];
  const name = upload ? upload.file.name : row.record.filename;
  if (!upload) {
    actions.push(button("Choose file to resume", "resume-upload", () => hooks.chooseFiles()));
    actions.push(button("Discard", "discard-upload", () => discardRemembered(row)));
  } else if (upload.active) {
    if (upload.state !== "completing") actions.push(button("Cancel", "cancel-upload", () => upload.cancel()));
  } else {
    if (upload.jobId && upload.state === "done") {
      actions.push(button("Show job", "show-job", () => {
        select(upload, { showJob: false });
        hooks.openJob(upload.jobId);
      }));
    }
    if (upload.state === "failed") {
      actions.push(button("Retry", "retry-upload", () => { removeRow(row); startUploads([upload.file]); }));
    }
    actions.push(button("Remove", "remove-upload", () => removeRow(row)));
  }
  for (const action of actions) action.setAttribute("aria-label", `${action.textContent}: ${name}`);
  li.querySelector(".upload-actions").replaceChildren(...actions);
}

// --- the current upload panel ---------------------------------------------------

function renderPanel() {
  const upload = selected;
  $("current-upload").hidden = !upload;
  if (!upload) return;
  const percent = upload.state === "done" ? 100 : percentOf(upload.loaded, upload.file.size);
  const bar = $("upload-progress");
  bar.value = percent;
  bar.textContent = `${percent} %`;
  $("upload-percent").textContent = `${percent} %`;
  $("current-name").textContent = upload.file.name;
  $("current-state").textContent = STATE_LABELS[upload.state];
  $("current-state").dataset.state = upload.state;
  $("upload-stats").textContent = statsText(upload);
  $("cancel-button").hidden = !upload.active || upload.state === "completing";
}

// --- uploads remembered from an earlier visit ---------------------------------

function showRememberedUploads() {
  for (const { key, record } of memory.rememberedUploads()) {
    if (rows.has(key)) continue;
    const li = makeRow(record.filename, record.size);
    li.dataset.jobId = record.job_id;
    li.querySelector(".upload-state").textContent = STATE_LABELS.paused;
    li.querySelector(".upload-note").textContent =
      "Paused. Choose the same file to resume: after a reload the browser cannot reopen it by itself.";
    const row = { key, record, upload: null, li, shownState: null };
    rows.set(key, row);
    renderRow(row);
    checkRemembered(row);
  }
}

// How far the server got; forget uploads the server no longer has.
async function checkRemembered(row) {
  const { record, li } = row;
  try {
    const listing = await api.uploadedParts(record.job_id);
    const held = (listing.parts || []).reduce((sum, part) => sum + (part.size || 0), 0);
    const percent = percentOf(held, record.size);
    li.querySelector(".upload-progress").value = percent;
    li.querySelector(".upload-state").textContent = `${STATE_LABELS.paused} at ${percent} %`;
    li.querySelector(".upload-stats").textContent = `${formatBytes(held)} of ${formatBytes(record.size)}`;
  } catch (error) {
    // Offline, or no valid token yet: the server did not say the upload is gone.
    if (!(error instanceof ApiError) || error.status === 0 || error.code === "UNAUTHENTICATED") return;
    if (!rows.has(row.key)) return; // resumed meanwhile
    const job = await api.getJob(record.job_id).catch(() => null);
    memory.forget(row.key);
    removeRow(row);
    if (job && UPLOADED_STATUSES.has(job.status)) hooks.uploadDone({ jobId: job.job_id });
  }
}

async function discardRemembered(row) {
  memory.forget(row.key);
  removeRow(row);
  try {
    await api.abortUpload(row.record.job_id);
  } catch (error) {
    // Already gone (expired or finished): nothing left to abort.
    if (error.status === 0) hooks.showError(`Could not cancel ${row.record.filename}: ${error.message}`);
  }
}

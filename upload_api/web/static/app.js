// vidpipe web page: upload videos, follow their jobs, play the results.
//
// Plain ES modules, no framework, no build step: the API Lambda serves these
// files as they are. This module only wires the parts together:
//   uploader.js      one file's upload (presigned POST or resumable multipart)
//   upload-memory.js what survives a reload of an unfinished upload
//   uploads-view.js  the upload rows and the current-upload panel
//   jobs-view.js     the job card and the recent jobs (a grid of posters)
//   job-actions.js   copy playback URL, download MP4, rename, delete
//   player.js        hls.js, quality menu, seek bar with storyboard previews
//   player-options.js captions, speed, volume, picture-in-picture, shortcuts
//   storyboard.js    the storyboard VTT

import { UNAUTHORIZED_EVENT, adoptTokenFromUrl, setApiToken } from "./api.js";
import { followJob, initJobs, openJob, refreshRecentJobs, shownJobId, showJob } from "./jobs-view.js";
import { initPlayer } from "./player.js";
import { DEFAULT_CONCURRENCY } from "./uploader.js";
import { initUploads, startUploads } from "./uploads-view.js";

const $ = (id) => document.getElementById(id);
const MAX_CONCURRENCY = 16;

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

// Parallel part uploads: ?concurrency=N in the page's address (1–16), default 4.
function concurrencySetting() {
  const asked = Number.parseInt(new URLSearchParams(location.search).get("concurrency"), 10);
  return Number.isInteger(asked) && asked > 0 ? Math.min(asked, MAX_CONCURRENCY) : DEFAULT_CONCURRENCY;
}

function onSubmit(event) {
  event.preventDefault();
  const input = $("file-input");
  const files = [...input.files];
  if (!files.length) {
    showError("Choose a video file first.");
    input.focus();
    return;
  }
  clearError();
  startUploads(files);
  // Cleared so that choosing the same file again (to resume it) is a change too.
  input.value = "";
}

// "Choose file to resume" opens the chooser and starts at once, without the Upload press.
let startOnChoose = false;

function chooseFilesAndStart() {
  startOnChoose = true;
  $("file-input").click();
}

function onFilesChosen() {
  if (!startOnChoose) return;
  startOnChoose = false;
  if ($("file-input").files.length) onSubmit(new Event("submit"));
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

function wireDropZone() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...event.dataTransfer.files];
    if (!files.length) return;
    clearError();
    startUploads(files);
  });
  // A file dropped beside the zone would make the browser open it, leaving the page.
  for (const name of ["dragover", "drop"]) {
    window.addEventListener(name, (event) => { if (hasFiles(event)) event.preventDefault(); });
  }
}

function wireTokenForm() {
  window.addEventListener(UNAUTHORIZED_EVENT, () => {
    if (!$("access").hidden) return;
    $("access").hidden = false;
    $("api-token").focus();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("api-token").value.trim();
    if (!token) return;
    setApiToken(token);
    $("api-token").value = "";
    $("access").hidden = true;
    clearError();
    refreshRecentJobs();
    const jobId = shownJobId();
    if (jobId) openJob(jobId, { scroll: false });
  });
}

function start() {
  // First, before anything calls the API: #token=… moves into storage.
  const fragment = adoptTokenFromUrl();
  wireTokenForm();
  initPlayer(showError);
  initJobs({ error: showError, clear: clearError });
  initUploads({
    concurrency: concurrencySetting(),
    showError,
    openJob: (jobId) => openJob(jobId),
    chooseFiles: chooseFilesAndStart,
    // The selected upload's job goes into the job card as soon as it exists.
    jobStarted(upload) {
      if (shownJobId() === upload.jobId) return;
      showJob({ job_id: upload.jobId, status: "AWAITING_UPLOAD", source: { filename: upload.file.name } });
    },
    jobCreated: () => refreshRecentJobs(),
    uploadDone(upload) {
      if (upload.jobId && upload.jobId === shownJobId()) followJob(upload.jobId);
      refreshRecentJobs();
    },
  });
  $("upload-form").addEventListener("submit", onSubmit);
  $("file-input").addEventListener("change", onFilesChosen);
  $("file-input").addEventListener("cancel", () => { startOnChoose = false; });
  wireDropZone();
  refreshRecentJobs();
  // #job=ID keeps the job in view across a reload and makes it shareable.
  const jobId = fragment.get("job");
  if (jobId && /^[\w-]+$/.test(jobId)) openJob(jobId, { scroll: false });
}

start();

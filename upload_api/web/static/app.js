// vidpipe web page: upload a video, follow its job, play the result.
//
// Plain functions, no framework, no build step. Every API URL is relative and
// resolved against document.baseURI, because the API is served under a prefix
// (/_aws/execute-api/{apiId}/ on the local stack, a stage name on AWS).
"use strict";

const POLL_INTERVAL_MS = 1000;
// Polling survives short API hiccups (a cold Lambda, a restarting local stack)
// but gives up rather than spinning forever against a dead endpoint.
const MAX_POLL_FAILURES = 30;
const TERMINAL_STATUSES = new Set(["READY", "FAILED", "EXPIRED"]);
const STATUS_HINTS = {
  AWAITING_UPLOAD: "waiting for the file to arrive",
  UPLOADED: "received, queued for processing",
  PROCESSING: "transcoding and making thumbnails",
  READY: "ready to play",
  FAILED: "processing failed",
  EXPIRED: "the upload was never completed",
};

// Short words: they share a narrow column with the bar on a phone.
const STAGE_LABELS = { PENDING: "waiting", COMPLETED: "done", FAILED: "failed" };

const $ = (id) => document.getElementById(id);

// What the page is showing now. `viewToken` changes whenever another job is
// shown, so a poll loop for an older job notices and stops.
const state = { jobId: null, viewToken: 0, hls: null, playerJobId: null };

function apiUrl(path) {
  return new URL(path, document.baseURI).toString();
}

// --- errors ----------------------------------------------------------------

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

// The API answers errors as {error: {code, message}}; API Gateway itself (a
// timeout, a missing route) answers {message}. Fall back to the HTTP status.
async function readApiError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Not JSON: keep the status line below.
  }
  if (body && body.error && body.error.message) return body.error.message;
  if (body && typeof body.message === "string") return body.message;
  return `The server answered ${response.status} ${response.statusText}`.trim();
}

async function apiJson(path, options) {
  const response = await fetch(apiUrl(path), options);
  if (!response.ok) {
    const error = new Error(await readApiError(response));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// --- upload ----------------------------------------------------------------

function setUploadProgress(fraction) {
  const percent = Math.round(fraction * 100);
  const bar = $("upload-progress");
  bar.value = percent;
  bar.textContent = `${percent} %`;
  $("upload-percent").textContent = `${percent} %`;
}

async function createUpload(file) {
  return apiJson("uploads", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      filename: file.name,
      // Browsers leave type empty for extensions they do not know; let the API
      // decide whether that is acceptable rather than guessing here.
      content_type: file.type || "application/octet-stream",
      size: file.size,
    }),
  });
}

// S3 answers a failed POST with XML such as <Error><Code>…</Code><Message>…</Message></Error>.
function readS3Error(xhr) {
  const text = xhr.responseText || "";
  try {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const message = doc.querySelector("Message");
    if (message && message.textContent) return message.textContent;
  } catch (_) {
    // Unparseable body: fall through to the status.
  }
  return `Storage answered ${xhr.status} ${xhr.statusText}`.trim();
}

// XMLHttpRequest rather than fetch: fetch has no upload progress events.
function postToStorage(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    // S3 reads the policy fields first and ignores anything after `file`,
    // so `file` must be the last entry.
    for (const [name, value] of Object.entries(upload.fields || {})) {
      form.append(name, value);
    }
    form.append("file", file);

    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new Error(readS3Error(xhr)));
    };
    xhr.onerror = () => reject(new Error("The upload could not reach storage (network or CORS error)."));
    xhr.onabort = () => reject(new Error("The upload was cancelled."));
    xhr.send(form);
  });
}

async function onUploadSubmit(event) {
  event.preventDefault();
  clearError();
  const file = $("file-input").files[0];
  if (!file) {
    showError("Choose a video file first.");
    $("file-input").focus();
    return;
  }

  const button = $("upload-button");
  button.disabled = true;
  setUploadProgress(0);
  try {
    const created = await createUpload(file);
    if (created.upload.method !== "POST") {
      // Multipart plans (large files) are not handled by this page yet.
      throw new Error(`This page cannot upload with method ${created.upload.method}.`);
    }
    showJob({ job_id: created.job_id, status: "AWAITING_UPLOAD", source: { filename: file.name } });
    await postToStorage(created.upload, file, setUploadProgress);
    setUploadProgress(1);
    followJob(created.job_id);
    refreshRecentJobs();
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false;
  }
}

// --- job view ----------------------------------------------------------------

function formatDuration(seconds) {
  if (typeof seconds !== "number") return null;
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function formatBytes(bytes) {
  if (typeof bytes !== "number") return null;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function formatBitrate(bps) {
  if (typeof bps !== "number") return "";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

function describeSource(source) {
  if (!source) return "";
  const parts = [];
  if (source.width && source.height) parts.push(`${source.width}×${source.height}`);
  const duration = formatDuration(source.duration_s);
  if (duration) parts.push(duration);
  if (source.video_codec) parts.push(source.video_codec);
  if (source.audio_codec) parts.push(source.audio_codec);
  const size = formatBytes(source.size);
  if (size) parts.push(size);
  return parts.join(" · ");
}

function renderStage(name, stage) {
  const status = (stage && stage.status) || "PENDING";
  const progress = Math.max(0, Math.min(1, (stage && stage.progress) || 0));
  // A completed stage may not report progress 1; show it full anyway.
  const percent = status === "COMPLETED" ? 100 : Math.round(progress * 100);
  $(`stage-${name}`).value = percent;
  $(`stage-${name}-text`).textContent = STAGE_LABELS[status] || `${percent} %`;
}

function renderJob(job) {
  $("job").hidden = false;
  $("job-id").textContent = job.job_id;
  // Only touch the live region when the status changes, so it is announced once.
  if ($("job-status").textContent !== job.status) {
    $("job-status").textContent = job.status;
    $("job-status").dataset.status = job.status;
    $("job-status-hint").textContent = STATUS_HINTS[job.status] ? `(${STATUS_HINTS[job.status]})` : "";
  }
  $("job-filename").textContent = (job.source && job.source.filename) || "—";
  $("job-source").textContent = describeSource(job.source) || "—";

  const stages = job.stages || {};
  renderStage("transcode", stages.transcode);
  renderStage("thumbnails", stages.thumbnails);

  if (job.status === "FAILED" || job.status === "EXPIRED") {
    const message = job.error && job.error.message;
    showError(message || STATUS_HINTS[job.status]);
  }
  if (job.status === "READY" && state.playerJobId !== job.job_id) {
    showPlayer(job);
  }
}

// Switch the view to another job: forget the old player and poll loop.
function showJob(job) {
  state.viewToken += 1;
  state.jobId = job.job_id;
  resetPlayer();
  $("job-status").textContent = "";
  renderJob(job);
  if (location.hash !== `#job=${job.job_id}`) history.replaceState(null, "", `#job=${job.job_id}`);
}

// Poll with setTimeout rather than setInterval so a slow answer never
// overlaps the next request.
function followJob(jobId) {
  const token = state.viewToken;
  let failures = 0;

  async function tick() {
    if (token !== state.viewToken) return;
    try {
      const job = await apiJson(`jobs/${encodeURIComponent(jobId)}`);
      if (token !== state.viewToken) return;
      failures = 0;
      renderJob(job);
      if (TERMINAL_STATUSES.has(job.status)) {
        refreshRecentJobs();
        return;
      }
    } catch (error) {
      if (token !== state.viewToken) return;
      failures += 1;
      if (error.status === 404 || failures >= MAX_POLL_FAILURES) {
        showError(error.message);
        return;
      }
    }
    setTimeout(tick, POLL_INTERVAL_MS);
  }
  tick();
}

// --- player --------------------------------------------------------------------

function resetPlayer() {
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  const video = $("player");
  video.pause();
  video.removeAttribute("src");
  video.removeAttribute("poster");
  video.load();
  state.playerJobId = null;
  $("playback").hidden = true;
  $("renditions").replaceChildren();
}

function attachHls(video, url) {
  // Safari (and browsers with native HLS) play the playlist directly.
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    return;
  }
  if (!window.Hls || !window.Hls.isSupported()) {
    showError("This browser cannot play HLS video.");
    return;
  }
  const hls = new window.Hls();
  let recoveredMedia = false;
  hls.on(window.Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    // A decode hiccup is often recoverable once; anything else ends playback.
    if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR && !recoveredMedia) {
      recoveredMedia = true;
      hls.recoverMediaError();
      return;
    }
    showError(`Playback failed: ${data.details}`);
    hls.destroy();
    if (state.hls === hls) state.hls = null;
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  state.hls = hls;
}

function renderRenditions(renditions) {
  const items = (renditions || []).map((rendition) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = rendition.url;
    link.textContent = rendition.name;
    const details = document.createElement("span");
    details.textContent = ` ${rendition.width}×${rendition.height} · ${formatBitrate(rendition.bitrate)}`;
    li.append(link, details);
    return li;
  });
  $("renditions").replaceChildren(...items);
}

function showPlayer(job) {
  const outputs = job.outputs || {};
  state.playerJobId = job.job_id;
  $("playback").hidden = false;
  const video = $("player");
  if (outputs.poster_url) video.poster = outputs.poster_url;
  if (outputs.hls_url) attachHls(video, outputs.hls_url);
  else showError("The job is READY but has no HLS playlist.");
  renderRenditions(outputs.renditions);
}

// --- recent jobs ---------------------------------------------------------------

function renderRecentJobs(jobs) {
  const items = jobs.map((job) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "job-link";
    const name = document.createElement("span");
    name.className = "job-name";
    name.textContent = (job.source && job.source.filename) || job.job_id;
    const status = document.createElement("span");
    status.className = "status";
    status.dataset.status = job.status;
    status.textContent = job.status;
    const when = document.createElement("span");
    when.className = "hint";
    when.textContent = job.created_at ? new Date(job.created_at).toLocaleString() : "";
    button.append(name, status, when);
    button.addEventListener("click", () => openJob(job.job_id));
    li.append(button);
    return li;
  });
  $("recent-jobs").replaceChildren(...items);
  $("recent-empty").hidden = jobs.length > 0;
}

async function refreshRecentJobs() {
  try {
    const page = await apiJson("jobs");
    renderRecentJobs(page.jobs || []);
  } catch (error) {
    // The list is a convenience; a failure here should not hide a job's error.
    $("recent-empty").hidden = false;
    $("recent-empty").textContent = `Could not load recent jobs: ${error.message}`;
  }
}

function openJob(jobId) {
  clearError();
  setUploadProgress(0);
  showJob({ job_id: jobId, status: "", source: null });
  followJob(jobId);
  $("job-heading").scrollIntoView({ behavior: "smooth", block: "start" });
}

// --- start ---------------------------------------------------------------------

function start() {
  $("upload-form").addEventListener("submit", onUploadSubmit);
  $("refresh-jobs").addEventListener("click", refreshRecentJobs);
  refreshRecentJobs();
  // #job=ID keeps the job in view across a reload and makes it shareable.
  const match = /^#job=([\w-]+)$/.exec(location.hash);
  if (match) openJob(match[1]);
}

start();

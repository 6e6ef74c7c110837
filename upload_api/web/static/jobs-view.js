// The job card (status, stages, player) and the list of recent jobs.

import { api } from "./api.js";
import { formatBytes, formatClock, formatWhen } from "./format.js";
import { displayName, initJobActions, renderJobActions } from "./job-actions.js";
import { resetPlayer, showVideo } from "./player.js";

const $ = (id) => document.getElementById(id);

const POLL_INTERVAL_MS = 1000;
const RECENT_POLL_INTERVAL_MS = 5000;
// Polling survives short API hiccups (a cold Lambda, a restarting local stack)
// but gives up rather than spinning forever against a dead endpoint.
const MAX_POLL_FAILURES = 30;
export const TERMINAL_STATUSES = new Set(["READY", "FAILED", "EXPIRED"]);
const STATUS_HINTS = {
  AWAITING_UPLOAD: "waiting for the file to arrive",
  UPLOADED: "received, queued for processing",
  PROCESSING: "transcoding and making thumbnails",
  READY: "ready to play",
  FAILED: "processing failed",
  EXPIRED: "the upload was never completed",
};
// Short words: they share a narrow column with the bar on a phone.
const STAGE_LABELS = { PENDING: "waiting", COMPLETED: "done", FAILED: "failed", SKIPPED: "skipped" };
const STAGES = ["transcode", "thumbnails"];

let report = { error: () => {}, clear: () => {} };
// `viewToken` changes whenever another job is shown, so the poll loop of an
// older job notices and stops.
const view = { jobId: null, token: 0, poll: 0, playerJobId: null };
const recent = { jobs: [], nextToken: null, loadedMore: false, timer: 0 };

export function initJobs(reporter) {
  report = reporter;
  $("refresh-jobs").addEventListener("click", () => refreshRecentJobs());
  $("more-jobs").addEventListener("click", () => refreshRecentJobs({ more: true }));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) scheduleRecentRefresh();
  });
  initJobActions({ renamed: onRenamed, deleted: forgetJob });
}

function onRenamed(job) {
  if (job.job_id === view.jobId) renderJob(job);
  recent.jobs = recent.jobs.map((listed) => (listed.job_id === job.job_id ? job : listed));
  renderRecentJobs();
}

/** The job is deleted: stop following it, empty the card, take it off the list. */
function forgetJob(jobId) {
  if (view.jobId === jobId) {
    view.token += 1;
    view.jobId = null;
    view.playerJobId = null;
    resetPlayer();
    $("job").hidden = true;
    report.clear();
    history.replaceState(null, "", location.pathname + location.search);
  }
  recent.jobs = recent.jobs.filter((job) => job.job_id !== jobId);
  renderRecentJobs();
  // The card's buttons are gone: keyboard focus goes to the list the user returns to.
  $("recent-heading").tabIndex = -1;
  $("recent-heading").focus();
  refreshRecentJobs();
}

export const shownJobId = () => view.jobId;

// --- the job card -----------------------------------------------------------

function describeSource(source) {
  if (!source) return "";
  const parts = [];
  if (source.width && source.height) parts.push(`${source.width}×${source.height}`);
  if (typeof source.duration_s === "number") parts.push(formatClock(source.duration_s));
  if (source.video_codec) parts.push(source.video_codec);
  if (source.audio_codec) parts.push(source.audio_codec);
  if (typeof source.size === "number") parts.push(formatBytes(source.size));
  return parts.join(" · ");
}

function stageText(stage) {
  const status = (stage && stage.status) || "PENDING";
  const percent = status === "COMPLETED" ? 100 : Math.round(Math.max(0, Math.min(1, stage?.progress || 0)) * 100);
  return { status, percent, label: STAGE_LABELS[status] || `${percent} %` };
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
  $("job-title").textContent = job.title || "—";
  $("job-filename").textContent = job.source?.filename || "—";
  $("job-source").textContent = describeSource(job.source) || "—";
  for (const name of STAGES) {
    const { percent, label } = stageText(job.stages?.[name]);
    $(`stage-${name}`).value = percent;
    $(`stage-${name}-text`).textContent = label;
  }
  const error = job.error || {};
  if (error.code === "UPLOAD_CANCELLED") {
    // The user's own choice, not a failure to shout about.
    $("job-status-hint").textContent = "(the upload was cancelled)";
  } else if (job.status === "FAILED" || job.status === "EXPIRED") {
    report.error(error.message || STATUS_HINTS[job.status]);
  }
  // Early playback: the lowest rung plays while the job is still PROCESSING
  // (the API gives hls_url as soon as it is playable); READY brings the ladder.
  const playable = job.status === "READY" || (job.status === "PROCESSING" && job.outputs?.hls_url);
  const playerKey = `${job.job_id}:${job.status === "READY" ? "ready" : "early"}`;
  if (playable && view.playerJobId !== playerKey) {
    view.playerJobId = playerKey;
    $("playback").hidden = false;
    showVideo(job.outputs || {});
    renderRenditions(job.outputs?.renditions || []);
  }
  renderJobActions(job);
  markShownJob();
}

function renderRenditions(renditions) {
  const items = renditions.map((rendition) => {
    const li = document.createElement("li");
    li.textContent = `${rendition.name}: ${rendition.width}×${rendition.height}`;
    return li;
  });
  $("renditions").replaceChildren(...items);
}

/** Switch the card to another job (forgetting the old player and poll loop). */
export function showJob(job) {
  view.token += 1;
  view.jobId = job.job_id;
  view.playerJobId = null;
  resetPlayer();
  $("playback").hidden = true;
  $("renditions").replaceChildren();
  $("job-status").textContent = "";
  renderJob(job);
  if (location.hash !== `#job=${job.job_id}`) history.replaceState(null, "", `#job=${job.job_id}`);
}

// Poll with setTimeout rather than setInterval so a slow answer never
// overlaps the next request. A newer call replaces the running loop.
export function followJob(jobId) {
  view.poll += 1;
  const token = view.token;
  const poll = view.poll;
  const stale = () => token !== view.token || poll !== view.poll;
  let failures = 0;
  async function tick() {
    if (stale()) return;
    try {
      const job = await api.getJob(jobId);
      if (stale()) return;
      failures = 0;
      renderJob(job);
      if (TERMINAL_STATUSES.has(job.status)) {
        refreshRecentJobs();
        return;
      }
    } catch (error) {
      if (stale()) return;
      failures += 1;
      if (error.status === 404 || failures >= MAX_POLL_FAILURES) {
        report.error(error.message);
        return;
      }
    }
    setTimeout(tick, POLL_INTERVAL_MS);
  }
  tick();
}

export function openJob(jobId, { scroll = true } = {}) {
  report.clear();
  showJob({ job_id: jobId, status: "", source: null });
  followJob(jobId);
  if (scroll) $("job-heading").scrollIntoView({ behavior: "smooth", block: "start" });
}

// --- recent jobs --------------------------------------------------------------

function stageChip(name, stage) {
  const { status, label } = stageText(stage);
  const chip = document.createElement("span");
  chip.className = "stage-chip";
  chip.dataset.stage = name;
  chip.dataset.status = status;
  chip.textContent = `${name} ${label}`;
  return chip;
}

// Duration and resolution, as a poster's caption: "0:12 · 1280×720".
function jobFacts(source) {
  if (!source) return "";
  const parts = [];
  if (typeof source.duration_s === "number") parts.push(formatClock(source.duration_s));
  if (source.width && source.height) parts.push(`${source.width}×${source.height}`);
  return parts.join(" · ");
}

function recentItem(job) {
  const li = document.createElement("li");
  li.className = "recent-job";
  li.dataset.jobId = job.job_id;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "job-link";
  const poster = document.createElement(job.outputs?.poster_url ? "img" : "span");
  poster.className = job.outputs?.poster_url ? "job-poster" : "job-poster empty";
  // Decorative: the title next to it names the job for screen readers.
  if (job.outputs?.poster_url) Object.assign(poster, { src: job.outputs.poster_url, alt: "", loading: "lazy" });
  const name = document.createElement("span");
  name.className = "job-name";
  name.textContent = displayName(job);
  const facts = document.createElement("span");
  facts.className = "job-facts";
  facts.textContent = jobFacts(job.source);
  const status = document.createElement("span");
  status.className = "status";
  status.dataset.status = job.status;
  status.textContent = job.status;
  const stages = document.createElement("span");
  stages.className = "stage-chips";
  stages.append(...STAGES.map((stage) => stageChip(stage, job.stages?.[stage])));
  const when = document.createElement("span");
  when.className = "hint job-when";
  when.textContent = formatWhen(job.created_at);
  button.append(poster, name, facts, status);
  // Stage chips only while it moves: a finished job's status says it all.
  if (!TERMINAL_STATUSES.has(job.status)) button.append(stages);
  button.append(when);
  button.addEventListener("click", () => openJob(job.job_id));
  li.append(button);
  return li;
}

function markShownJob() {
  for (const li of $("recent-jobs").children) {
    const button = li.querySelector("button");
    if (li.dataset.jobId === view.jobId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function renderRecentJobs() {
  $("recent-jobs").replaceChildren(...recent.jobs.map(recentItem));
  $("recent-empty").hidden = recent.jobs.length > 0;
  $("more-jobs").hidden = !recent.nextToken;
  markShownJob();
}

// Refreshes the first page (or appends the next one), then keeps refreshing
// while a listed job is still moving.
export async function refreshRecentJobs({ more = false } = {}) {
  try {
    const page = await api.listJobs(more ? recent.nextToken : null);
    const jobs = page.jobs || [];
    if (more) {
      const known = new Set(recent.jobs.map((job) => job.job_id));
      recent.jobs.push(...jobs.filter((job) => !known.has(job.job_id)));
      recent.nextToken = page.next_token || null;
      recent.loadedMore = true;
    } else if (recent.loadedMore) {
      // Keep the older pages the user loaded; the jobs pushed off the first
      // page by new ones stay too, as they would on page two.
      const fresh = new Set(jobs.map((job) => job.job_id));
      recent.jobs = [...jobs, ...recent.jobs.filter((job) => !fresh.has(job.job_id))];
    } else {
      recent.jobs = jobs;
      recent.nextToken = page.next_token || null;
    }
    $("recent-empty").textContent = "No jobs yet.";
    renderRecentJobs();
  } catch (error) {
    // The list is a convenience; a failure here should not hide a job's error.
    $("recent-empty").hidden = false;
    $("recent-empty").textContent = `Could not load recent jobs: ${error.message}`;
  }
  scheduleRecentRefresh();
}

function scheduleRecentRefresh() {
  clearTimeout(recent.timer);
  const moving = recent.jobs.some((job) => !TERMINAL_STATUSES.has(job.status));
  if (moving && !document.hidden) recent.timer = setTimeout(() => refreshRecentJobs(), RECENT_POLL_INTERVAL_MS);
}

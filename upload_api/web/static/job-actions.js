// What the user can do with the job in the card: copy its playback URL,
// download its MP4, rename it, and delete it after a confirmation.
//
// Rename and delete use native <dialog>s: they are modal, keep the focus
// inside, close on Escape and hand the focus back to the button that opened them.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const STATUS_CLEAR_MS = 3000;

let shown = null; // the job the buttons act on
let hooks = { renamed: () => {}, deleted: () => {} };
let statusTimer = 0;

/** `renamed(job)` gets the job as the API answered it; `deleted(jobId)` once it is gone. */
export function initJobActions({ renamed, deleted }) {
  hooks = { renamed, deleted };
  $("copy-url").addEventListener("click", copyPlaybackUrl);
  $("rename-job").addEventListener("click", openRename);
  $("delete-job").addEventListener("click", openDelete);
  $("rename-form").addEventListener("submit", onRename);
  $("rename-cancel").addEventListener("click", () => $("rename-dialog").close());
  $("delete-form").addEventListener("submit", onDelete);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
}

export const displayName = (job) => job.title || job.source?.filename || job.job_id;

/** Show the buttons that apply to this job (a job known only by its id gets none yet). */
export function renderJobActions(job) {
  const changed = shown?.job_id !== job.job_id;
  shown = job;
  if (changed) say("");
  const known = Boolean(job.status);
  const hlsUrl = job.outputs?.hls_url || "";
  $("playback-url-row").hidden = !hlsUrl;
  if ($("playback-url").value !== hlsUrl) $("playback-url").value = hlsUrl;
  const download = $("download-mp4");
  download.hidden = !job.outputs?.mp4_url;
  if (job.outputs?.mp4_url) download.href = job.outputs.mp4_url;
  else download.removeAttribute("href");
  $("rename-job").hidden = !known;
  $("delete-job").hidden = !known;
}

function say(text) {
  clearTimeout(statusTimer);
  $("action-status").textContent = text;
  if (text) statusTimer = setTimeout(() => { $("action-status").textContent = ""; }, STATUS_CLEAR_MS);
}

async function copyPlaybackUrl() {
  const input = $("playback-url");
  try {
    await navigator.clipboard.writeText(input.value);
    say("Playback URL copied.");
  } catch (_) {
    // No clipboard permission (or an insecure origin): select it for Ctrl+C instead.
    input.focus();
    input.select();
    say("Press Ctrl+C (⌘C) to copy the selected URL.");
  }
}

function showDialogError(id, message) {
  $(id).textContent = message;
  $(id).hidden = !message;
}

function openRename() {
  if (!shown) return;
  $("rename-input").value = shown.title || "";
  showDialogError("rename-error", "");
  $("rename-dialog").showModal();
  $("rename-input").select();
}

async function onRename(event) {
  // Stay open until the API agrees; a refusal (too long, two lines) is shown in the dialog.
  event.preventDefault();
  const jobId = shown.job_id;
  $("rename-save").disabled = true;
  try {
    const job = await api.renameJob(jobId, $("rename-input").value.trim());
    $("rename-dialog").close();
    say("Renamed.");
    hooks.renamed(job);
  } catch (error) {
    showDialogError("rename-error", error.message);
  } finally {
    $("rename-save").disabled = false;
  }
}

function openDelete() {
  if (!shown) return;
  $("delete-name").textContent = displayName(shown);
  showDialogError("delete-error", "");
  $("delete-dialog").showModal();
  $("delete-cancel").focus();
}

async function onDelete(event) {
  event.preventDefault();
  const jobId = shown.job_id;
  $("delete-confirm").disabled = true;
  try {
    await api.deleteJob(jobId);
  } catch (error) {
    // 404: deleted already (elsewhere, or a second click); gone is what was asked.
    if (error.status !== 404) {
      showDialogError("delete-error", error.message);
      $("delete-confirm").disabled = false;
      return;
    }
  }
  $("delete-confirm").disabled = false;
  $("delete-dialog").close();
  hooks.deleted(jobId);
}

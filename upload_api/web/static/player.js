// The player: hls.js (or native HLS where hls.js cannot run), a quality menu,
// our own controls, and storyboard thumbnails above the seek bar; captions,
// speed, volume, picture-in-picture and shortcuts are in player-options.js.
//
// Our own controls rather than the browser's: the native seek bar cannot show
// a preview, and two seek bars on one video would confuse. Our own rather than
// a player UI library's: the storyboard preview and the hls.js quality menu
// would need this code around any of them, and the rest is ~150 lines.

import { formatBitrate, formatClock } from "./format.js";
import { initPlayerOptions, resetOptions, useHlsCaptions, useNativeCaptions } from "./player-options.js";
import { cueAt, loadStoryboard } from "./storyboard.js";

const $ = (id) => document.getElementById(id);
const AUTO = "-1";
const SEEK_STEP_S = 5;
const KEYBOARD_PREVIEW_MS = 1200;

let els = null;
let onError = () => {};
// Everything that belongs to the video on screen; replaced as a whole on reset.
let current = { hls: null, cues: [], storyboard: null, renditions: [], masterUrl: "" };
let dragging = false;
let keyboardPreviewTimer = 0;

export function initPlayer(reportError) {
  onError = reportError;
  els = {
    box: $("player-box"),
    video: $("player"),
    seek: $("seek-bar"),
    preview: $("storyboard-preview"),
    previewTime: $("storyboard-time"),
    quality: $("quality-select"),
    play: $("play-button"),
    mute: $("mute-button"),
    fullscreen: $("fullscreen-button"),
    time: $("time-display"),
  };
  const { video, seek } = els;
  els.play.addEventListener("click", togglePlay);
  video.addEventListener("click", togglePlay);
  els.mute.addEventListener("click", () => { video.muted = !video.muted; });
  els.fullscreen.addEventListener("click", toggleFullscreen);
  els.quality.addEventListener("change", () => chooseQuality(els.quality.value));
  for (const name of ["play", "pause", "ended", "volumechange", "timeupdate", "durationchange", "loadedmetadata"]) {
    video.addEventListener(name, renderControls);
  }
  document.addEventListener("fullscreenchange", renderControls);
  initPlayerOptions({ togglePlay, toggleFullscreen, afterSeek: renderControls });

  seek.addEventListener("input", () => {
    video.currentTime = Number(seek.value);
    renderControls();
  });
  seek.addEventListener("pointerdown", () => { dragging = true; });
  window.addEventListener("pointerup", () => { dragging = false; });
  seek.addEventListener("pointermove", (event) => showPreviewAt(timeAtPointer(event)));
  seek.addEventListener("pointerleave", () => { if (!dragging) hidePreview(); });
  seek.addEventListener("keydown", onSeekKey);
  seek.addEventListener("blur", hidePreview);
  renderControls();
}

export function resetPlayer() {
  if (current.hls) current.hls.destroy();
  if (current.storyboard) current.storyboard.abort();
  current = { hls: null, cues: [], storyboard: null, renditions: [], masterUrl: "" };
  resetOptions();
  const { video } = els;
  video.pause();
  video.removeAttribute("src");
  video.removeAttribute("poster");
  video.load();
  hidePreview();
  els.quality.replaceChildren(new Option("Auto", AUTO));
  els.quality.disabled = true;
  renderControls();
}

/** Start showing a READY job's outputs. */
export function showVideo(outputs) {
  const { video } = els;
  // When the full ladder replaces the early preview, the viewer carries on from
  // where they were, playing or paused, instead of starting over.
  const resume = current.masterUrl ? { at: video.currentTime, play: !video.paused } : { at: 0, play: false };
  resetPlayer();
  if (outputs.poster_url) video.poster = outputs.poster_url;
  current.renditions = [...(outputs.renditions || [])].sort((a, b) => b.height - a.height);
  current.masterUrl = outputs.hls_url;
  if (outputs.hls_url) attachHls(outputs.hls_url, resume);
  else onError("The job is READY but has no HLS playlist.");
  if (outputs.storyboard_vtt_url) {
    const controller = new AbortController();
    current.storyboard = controller;
    const mine = current;
    loadStoryboard(outputs.storyboard_vtt_url, controller.signal)
      .then((cues) => { if (mine === current) current.cues = cues; })
      .catch((error) => {
        // Previews are a nicety: the video plays without them.
        if (error.name !== "AbortError") console.warn("storyboard:", error.message);
      });
  }
}

// hls.js first, even where canPlayType claims native HLS (Chromium does now):
// only hls.js lets the page list and pick the levels. Native HLS (Safari on
// iOS, which has no MediaSource) is the fallback.
function attachHls(url, resume) {
  const { video } = els;
  const Hls = window.Hls;
  const carryOn = () => {
    if (resume.play) video.play().catch(() => {});
  };
  if (Hls && Hls.isSupported()) {
    const hls = new Hls(resume.at > 0 ? { startPosition: resume.at } : {});
    let recoveredMedia = false;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      fillQualityMenu(hls.levels.map((level, index) => ({
        value: String(index), height: level.height, bitrate: level.bitrate,
      })));
      useHlsCaptions(hls);
      carryOn();
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => useHlsCaptions(hls));
    hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => labelAuto(hls.levels[data.level]));
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      // A decode hiccup is often recoverable once; anything else ends playback.
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recoveredMedia) {
        recoveredMedia = true;
        hls.recoverMediaError();
        return;
      }
      onError(`Playback failed: ${data.details}`);
      hls.destroy();
      if (current.hls === hls) current.hls = null;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    current.hls = hls;
    return;
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    if (resume.at > 0 || resume.play) {
      video.addEventListener("loadedmetadata", () => {
        video.currentTime = resume.at;
        carryOn();
      }, { once: true });
    }
    useNativeCaptions();
    // Native HLS picks levels itself; a fixed quality plays that rendition's own playlist.
    fillQualityMenu(current.renditions.map((rendition) => ({
      value: rendition.url, height: rendition.height, bitrate: rendition.bitrate,
    })));
    return;
  }
  onError("This browser cannot play HLS video.");
}

function fillQualityMenu(levels) {
  const options = [...levels]
    .sort((a, b) => b.height - a.height || b.bitrate - a.bitrate)
    .map((level) => new Option(`${level.height}p · ${formatBitrate(level.bitrate)}`, level.value));
  els.quality.replaceChildren(new Option("Auto", AUTO), ...options);
  els.quality.disabled = options.length < 2;
}

function labelAuto(level) {
  const auto = els.quality.options[0];
  if (auto) auto.textContent = level && els.quality.value === AUTO ? `Auto (${level.height}p)` : "Auto";
}

function chooseQuality(value) {
  const { video } = els;
  if (current.hls) {
    // currentLevel switches now (flushing the buffer); -1 gives the choice back to hls.js.
    current.hls.currentLevel = Number(value);
    if (value !== AUTO) labelAuto(null);
    return;
  }
  // Native HLS: swap the playlist and carry on where we were.
  const time = video.currentTime;
  const wasPlaying = !video.paused;
  video.src = value === AUTO ? current.masterUrl : value;
  video.addEventListener("loadedmetadata", () => {
    video.currentTime = time;
    if (wasPlaying) video.play().catch(() => {});
  }, { once: true });
}

function togglePlay() {
  const { video } = els;
  if (video.paused || video.ended) {
    video.play().catch((error) => {
      if (error.name !== "AbortError") onError(`The video cannot play: ${error.message}`);
    });
  } else {
    video.pause();
  }
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else if (els.box.requestFullscreen) els.box.requestFullscreen().catch(() => {});
  else if (els.video.webkitEnterFullscreen) els.video.webkitEnterFullscreen(); // iOS Safari
}

function renderControls() {
  const { video, seek } = els;
  const duration = Number.isFinite(video.duration) ? video.duration : 0;
  seek.max = String(duration);
  if (!dragging) seek.value = String(video.currentTime);
  seek.disabled = duration === 0;
  seek.style.setProperty("--played", duration ? `${(video.currentTime / duration) * 100}%` : "0%");
  seek.setAttribute("aria-valuetext", `${formatClock(video.currentTime)} of ${formatClock(duration)}`);
  els.time.textContent = `${formatClock(video.currentTime)} / ${formatClock(duration)}`;
  const playing = !video.paused && !video.ended;
  els.box.dataset.playing = String(playing);
  els.box.dataset.muted = String(video.muted);
  els.play.setAttribute("aria-label", playing ? "Pause" : "Play");
  els.mute.setAttribute("aria-pressed", String(video.muted));
  els.fullscreen.setAttribute("aria-label", document.fullscreenElement ? "Exit full screen" : "Full screen");
}

function onSeekKey(event) {
  const { video } = els;
  const duration = Number.isFinite(video.duration) ? video.duration : 0;
  const moves = {
    ArrowLeft: -SEEK_STEP_S, ArrowDown: -SEEK_STEP_S, ArrowRight: SEEK_STEP_S, ArrowUp: SEEK_STEP_S,
    PageDown: -duration / 10, PageUp: duration / 10,
  };
  let target;
  if (event.key in moves) target = video.currentTime + moves[event.key];
  else if (event.key === "Home") target = 0;
  else if (event.key === "End") target = duration;
  else return;
  event.preventDefault();
  video.currentTime = Math.max(0, Math.min(duration, target));
  renderControls();
  // Keyboard users see where they landed, as a pointer user would on hover.
  showPreviewAt(video.currentTime);
  clearTimeout(keyboardPreviewTimer);
  keyboardPreviewTimer = setTimeout(hidePreview, KEYBOARD_PREVIEW_MS);
}

function timeAtPointer(event) {
  const rect = els.seek.getBoundingClientRect();
  const fraction = Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width));
  return fraction * Number(els.seek.max || 0);
}

function showPreviewAt(time) {
  const { preview, seek } = els;
  const cue = cueAt(current.cues, time);
  const duration = Number(seek.max || 0);
  if (!duration) return;
  els.previewTime.textContent = formatClock(time);
  if (cue) {
    preview.style.width = `${cue.w}px`;
    preview.style.height = `${cue.h}px`;
    preview.style.backgroundImage = `url("${cue.image.replace(/["\\]/g, "\\$&")}")`;
    preview.style.backgroundPosition = `${-cue.x}px ${-cue.y}px`;
    preview.classList.remove("time-only");
  } else {
    // No storyboard (yet): show the time alone.
    preview.style.backgroundImage = "none";
    preview.classList.add("time-only");
  }
  preview.hidden = false;
  // Centre over the pointer, but keep the whole tile inside the player.
  const track = seek.getBoundingClientRect();
  const width = preview.offsetWidth;
  const centre = (time / duration) * track.width;
  const left = Math.max(0, Math.min(track.width - width, centre - width / 2));
  preview.style.left = `${left}px`;
}

function hidePreview() {
  els.preview.hidden = true;
}

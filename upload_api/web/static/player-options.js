// The player's smaller controls: captions, speed, volume, picture-in-picture,
// and keyboard shortcuts. player.js owns playback (hls.js, quality, seeking)
// and hands over the hls.js instance so the captions menu can list its
// subtitle tracks (the master playlist's SUBTITLES renditions).

const $ = (id) => document.getElementById(id);
const OFF = "-1";
const SEEK_STEP_S = 5;
const VOLUME_STEP = 0.1;
const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];

let els = null;
let actions = { togglePlay: () => {}, toggleFullscreen: () => {}, afterSeek: () => {} };
let source = { hls: null }; // where the captions come from: hls.js, or the video's own text tracks
let lastCaptions = OFF; // what "c" turns back on

/** `actions`: the player's own togglePlay, toggleFullscreen and afterSeek (redraws the controls). */
export function initPlayerOptions(playerActions) {
  actions = playerActions;
  els = {
    box: $("player-box"),
    video: $("player"),
    captions: $("captions-select"),
    speed: $("speed-select"),
    volume: $("volume"),
    pip: $("pip-button"),
  };
  const { video } = els;
  els.speed.addEventListener("change", () => { video.playbackRate = Number(els.speed.value); });
  video.addEventListener("ratechange", () => { els.speed.value = String(video.playbackRate); });
  els.volume.addEventListener("input", () => {
    video.volume = Number(els.volume.value);
    video.muted = video.volume === 0;
  });
  video.addEventListener("volumechange", () => {
    els.volume.value = String(video.muted ? 0 : video.volume);
  });
  els.captions.addEventListener("change", () => chooseCaptions(els.captions.value));
  // Picture-in-picture where the browser has it (not Firefox's API, nor iOS in a page).
  els.pip.hidden = !document.pictureInPictureEnabled;
  els.pip.addEventListener("click", togglePictureInPicture);
  els.box.addEventListener("keydown", onShortcut);
}

/** A new video: no captions until its playlist lists some. */
export function resetOptions() {
  source = { hls: null };
  lastCaptions = OFF;
  els.video.textTracks.onaddtrack = null;
  fillCaptionsMenu([]);
  if (document.pictureInPictureElement) document.exitPictureInPicture().catch(() => {});
}

/** hls.js parsed the master playlist: offer its subtitle tracks, none shown at first. */
export function useHlsCaptions(hls) {
  source = { hls };
  hls.subtitleDisplay = true;
  const tracks = hls.subtitleTracks.map((track, index) => ({ value: String(index), label: trackLabel(track) }));
  fillCaptionsMenu(tracks);
  // hls.js may pick a DEFAULT=YES track itself; the menu shows what plays.
  els.captions.value = String(hls.subtitleTrack);
  if (els.captions.value === "") els.captions.value = OFF;
}

/** Native HLS (Safari): the browser makes text tracks of the SUBTITLES itself. */
export function useNativeCaptions() {
  const { video } = els;
  const list = () => [...video.textTracks].filter((track) => track.kind === "subtitles" || track.kind === "captions");
  const refill = () => fillCaptionsMenu(list().map((track, index) => ({ value: String(index), label: trackLabel(track) })));
  video.textTracks.onaddtrack = refill;
  refill();
}

function trackLabel(track) {
  return track.name || track.label || track.lang || track.language || "Captions";
}

function fillCaptionsMenu(tracks) {
  els.captions.replaceChildren(new Option("Captions off", OFF), ...tracks.map((t) => new Option(t.label, t.value)));
  els.captions.hidden = tracks.length === 0;
}

function chooseCaptions(value) {
  if (value !== OFF) lastCaptions = value;
  els.captions.value = value;
  if (source.hls) {
    source.hls.subtitleTrack = Number(value);
    return;
  }
  const tracks = [...els.video.textTracks].filter((track) => track.kind === "subtitles" || track.kind === "captions");
  tracks.forEach((track, index) => { track.mode = String(index) === value ? "showing" : "disabled"; });
}

function toggleCaptions() {
  if (els.captions.hidden) return;
  if (els.captions.value !== OFF) chooseCaptions(OFF);
  else chooseCaptions(lastCaptions !== OFF ? lastCaptions : els.captions.options[1].value);
}

function stepSpeed(direction) {
  const { video } = els;
  const at = SPEEDS.findIndex((speed) => speed >= video.playbackRate);
  const index = Math.max(0, Math.min(SPEEDS.length - 1, (at === -1 ? SPEEDS.length - 1 : at) + direction));
  video.playbackRate = SPEEDS[index];
}

function stepVolume(delta) {
  const { video } = els;
  video.volume = Math.round(Math.max(0, Math.min(1, video.volume + delta)) * 100) / 100;
  video.muted = video.volume === 0;
}

function seekBy(seconds) {
  const { video } = els;
  const duration = Number.isFinite(video.duration) ? video.duration : 0;
  video.currentTime = Math.max(0, Math.min(duration, video.currentTime + seconds));
  actions.afterSeek();
}

async function togglePictureInPicture() {
  try {
    if (document.pictureInPictureElement) await document.exitPictureInPicture();
    else await els.video.requestPictureInPicture();
  } catch (_) {
    // Refused (no metadata yet, or a policy): the video simply stays in the page.
  }
}

// YouTube-like keys while the focus is in the player. Form controls keep their
// own keys (the seek bar and volume take the arrows, a menu takes letters).
const SHORTCUTS = {
  " ": () => actions.togglePlay(),
  k: () => actions.togglePlay(),
  m: () => { els.video.muted = !els.video.muted; },
  f: () => actions.toggleFullscreen(),
  c: toggleCaptions,
  i: () => { if (!els.pip.hidden) togglePictureInPicture(); },
  ">": () => stepSpeed(1),
  "<": () => stepSpeed(-1),
  ArrowLeft: () => seekBy(-SEEK_STEP_S),
  ArrowRight: () => seekBy(SEEK_STEP_S),
  ArrowUp: () => stepVolume(VOLUME_STEP),
  ArrowDown: () => stepVolume(-VOLUME_STEP),
};

function onShortcut(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
  // A focused button keeps Space and Enter for itself.
  if (target instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const shortcut = SHORTCUTS[key] || SHORTCUTS[event.key];
  if (!shortcut) return;
  event.preventDefault();
  shortcut();
}

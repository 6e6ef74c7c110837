// Storyboard thumbnails: a WebVTT file whose cues name a tile of one sprite
// image, "<sprite url>#xywh=x,y,w,h" (the media-fragment form video players use).

function parseTimestamp(text) {
  // hh:mm:ss.ttt or mm:ss.ttt
  const match = /^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$/.exec(text.trim());
  if (!match) return NaN;
  const [, h = "0", m, s, ms = "0"] = match;
  return Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms.padEnd(3, "0")) / 1000;
}

/** Cues as [{start, end, image, x, y, w, h}] sorted by start; malformed cues are skipped. */
export function parseStoryboard(text, baseUrl) {
  const cues = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n{2,}/)) {
    const lines = block.split("\n").map((line) => line.trim()).filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || timing + 1 >= lines.length) continue;
    const [startText, rest] = lines[timing].split("-->");
    const start = parseTimestamp(startText);
    const end = parseTimestamp(rest.trim().split(/\s+/)[0]);
    const payload = lines[timing + 1];
    const hash = payload.lastIndexOf("#xywh=");
    if (!Number.isFinite(start) || !Number.isFinite(end) || hash < 0) continue;
    const box = payload.slice(hash + 6).split(",").map(Number);
    if (box.length !== 4 || box.some((n) => !Number.isFinite(n))) continue;
    const [x, y, w, h] = box;
    cues.push({ start, end, image: new URL(payload.slice(0, hash), baseUrl).toString(), x, y, w, h });
  }
  return cues.sort((a, b) => a.start - b.start);
}

/** The cue shown at `time` (seconds): the last one starting at or before it. */
export function cueAt(cues, time) {
  let low = 0;
  let high = cues.length - 1;
  let found = null;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (cues[mid].start <= time) {
      found = cues[mid];
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found || cues[0] || null;
}

export async function loadStoryboard(url, signal) {
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`The storyboard could not be loaded (${response.status}).`);
  const cues = parseStoryboard(await response.text(), url);
  // Fetch the sprite now so the first hover shows a picture at once.
  for (const image of new Set(cues.map((cue) => cue.image))) new Image().src = image;
  return cues;
}

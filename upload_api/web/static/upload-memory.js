// What the page remembers about unfinished multipart uploads, across reloads.
//
// Only the plan is kept ({job_id, part_size, part_count} plus what the list
// shows), never file data: after a reload the browser gives the page no access
// to the file until the user chooses it again, and the server's part list says
// what already arrived. Keyed by name + size + lastModified, which is what
// identifies "the same file" when it is chosen again.

const PREFIX = "vidpipe.upload.";
// Older than this, the server has expired the job and aborted the upload anyway.
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;

export function fileKey(file) {
  return `${PREFIX}${file.size}:${file.lastModified}:${file.name}`;
}

// localStorage throws when it is disabled or full; remembering is a bonus, so
// every failure just means "nothing remembered".
function storage() {
  try {
    return window.localStorage;
  } catch (_) {
    return null;
  }
}

export function remember(file, plan) {
  const record = {
    job_id: plan.job_id,
    part_size: plan.part_size,
    part_count: plan.part_count,
    filename: file.name,
    size: file.size,
    last_modified: file.lastModified,
    saved_at: Date.now(),
  };
  try {
    storage()?.setItem(fileKey(file), JSON.stringify(record));
  } catch (_) {
    // Full or disabled: the upload still works, it just cannot resume after a reload.
  }
}

export function recall(file) {
  const record = read(fileKey(file));
  return record && record.size === file.size ? record : null;
}

export function forget(keyOrFile) {
  const key = typeof keyOrFile === "string" ? keyOrFile : fileKey(keyOrFile);
  try {
    storage()?.removeItem(key);
  } catch (_) {
    // Nothing to do.
  }
}

// Every remembered upload as {key, record}, oldest first; stale ones are dropped.
export function rememberedUploads() {
  const store = storage();
  if (!store) return [];
  // Keys first: forgetting while walking the indexes would skip entries.
  const keys = [];
  for (let i = 0; i < store.length; i += 1) keys.push(store.key(i));
  const found = [];
  for (const key of keys) {
    if (!key || !key.startsWith(PREFIX)) continue;
    const record = read(key);
    if (record && Date.now() - record.saved_at < FORGET_AFTER_MS) found.push({ key, record });
    else forget(key);
  }
  return found.sort((a, b) => a.record.saved_at - b.record.saved_at);
}

function read(key) {
  try {
    const record = JSON.parse(storage()?.getItem(key) || "null");
    if (record && typeof record.job_id === "string" && record.part_size > 0) return record;
  } catch (_) {
    // Corrupt entry: treat as absent.
  }
  return null;
}

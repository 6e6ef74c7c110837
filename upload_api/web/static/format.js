// Numbers as people read them. Every function accepts a missing value and
// answers "" (or null where the caller decides what to show instead).

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes)) return "";
  if (bytes < MIB) return `${Math.round(bytes / KIB)} KiB`;
  if (bytes < GIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  return `${(bytes / GIB).toFixed(2)} GiB`;
}

export function formatRate(bytesPerSecond) {
  if (!(bytesPerSecond > 0)) return "";
  return `${formatBytes(bytesPerSecond)}/s`;
}

// A clock for media times: 0:07, 1:02:03.
export function formatClock(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "0:00";
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// Time left in words: "about 3 min left". Rounded up so it never says 0 too early.
export function formatTimeLeft(seconds) {
  if (!(seconds >= 0) || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.max(1, Math.ceil(seconds))} s left`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min left`;
  const h = Math.floor(seconds / 3600);
  return `${h} h ${Math.ceil((seconds % 3600) / 60)} min left`;
}

export function formatBitrate(bps) {
  if (typeof bps !== "number") return "";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

export function formatWhen(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

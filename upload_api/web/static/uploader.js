// Uploading one file: a single presigned POST for small files, S3 multipart for
// large ones, resumable after a reload or a lost connection.
//
// Why our own uploader and not Uppy's @uppy/aws-s3 (the anchor issue 3 names):
// - Uppy ships as npm packages meant for a bundler; this page has no build step
//   and serves flat files from the API Lambda, so we would vendor and maintain
//   a bundle of Uppy core + aws-s3 + its UI for a fraction of what it does.
// - Its resume-after-reload (Golden Retriever) keeps file blobs in IndexedDB,
//   which cannot hold the multi-gigabyte phone videos this path exists for.
//   Resuming by asking the server which parts it has, once the user chooses
//   the same file again, works at any size; only {job_id, part_size,
//   part_count} is stored (upload-memory.js).
// - Our API already answers every question the client has (the plan, fresh
//   part URLs, the parts S3 holds, complete, abort), so the client is a part
//   queue with retries: a couple of hundred lines we can read, test and keep.

import { ApiError, api } from "./api.js";
import * as memory from "./upload-memory.js";

export const DEFAULT_CONCURRENCY = 4;
// Per part: 7 retries spread over about a minute (0.5, 1, 2 … 20 s), enough to ride out a
// flaky connection; after that the upload fails and Retry (or choosing the file again) resumes it.
const MAX_ATTEMPTS = 8;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 20_000;
// Ask for fresh part URLs this long before the old ones expire: a 100 MiB part
// on a slow line must not start with a URL that dies half-way.
const URL_EXPIRY_MARGIN_MS = 2 * 60_000;
const URL_BATCH_SIZE = 50;
// No progress at all for this long means a dead connection the browser has not
// noticed (a Wi-Fi hand-over); abort that request and retry it.
const STALL_TIMEOUT_MS = 60_000;
const RATE_WINDOW_MS = 5_000;
const UPLOADED_STATUSES = new Set(["UPLOADED", "PROCESSING", "READY"]);

export class UploadCancelled extends Error {
  constructor() {
    super("The upload was cancelled.");
    this.name = "UploadCancelled";
  }
}

// A storage or API request that failed; `retryable` says whether trying the
// same thing again (maybe with a fresh URL) can help.
class TransferError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
    this.retryable = status === 0 || status === 403 || status === 408 || status === 429 || status >= 500;
  }
}

const isRetryable = (error) =>
  error instanceof TransferError ? error.retryable : error instanceof ApiError && (error.status === 0 || error.status >= 500);

// Shared by every upload on the page, so the concurrency setting bounds the
// connections to storage, not the connections per file.
export class Slots {
  constructor(size) {
    this.free = Math.max(1, size);
    this.waiting = [];
  }

  acquire(signal) {
    if (signal.aborted) return Promise.reject(new UploadCancelled());
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject };
      this.waiting.push(entry);
      signal.addEventListener("abort", () => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) {
          this.waiting.splice(index, 1);
          reject(new UploadCancelled());
        }
      }, { once: true });
    });
  }

  release() {
    const next = this.waiting.shift();
    if (next) next.resolve();
    else this.free += 1;
  }
}

// Bytes per second over the last few seconds, from monotonic byte counts.
class RateMeter {
  constructor() {
    this.samples = [];
  }

  add(bytes, now = performance.now()) {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[1][0] > RATE_WINDOW_MS) this.samples.shift();
  }

  rate(bytes) {
    this.add(bytes); // a stalled upload's speed decays instead of freezing
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 500 ? 0 : ((b1 - b0) * 1000) / (t1 - t0);
  }
}

// S3 answers a failure with XML such as <Error><Code>…</Code><Message>…</Message></Error>.
function storageMessage(xhr) {
  try {
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
    const message = doc.querySelector("Message");
    if (message && message.textContent) return `Storage answered ${xhr.status}: ${message.textContent}`;
  } catch (_) {
    // Unparseable body: fall through to the status.
  }
  return `Storage answered ${xhr.status} ${xhr.statusText}`.trim();
}

// XMLHttpRequest rather than fetch: fetch reports no upload progress.
function send(method, url, body, signal, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let stalled = false;
    let stallTimer = 0;
    const armStallTimer = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => { stalled = true; xhr.abort(); }, STALL_TIMEOUT_MS);
    };
    const abort = () => xhr.abort();
    xhr.open(method, url);
    xhr.upload.onprogress = (event) => { armStallTimer(); onProgress(event.loaded); };
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new TransferError("Storage could not be reached (network or CORS error).", 0));
    xhr.onabort = () => reject(stalled ? new TransferError("The connection stalled.", 0) : new UploadCancelled());
    xhr.onloadend = () => { clearTimeout(stallTimer); signal.removeEventListener("abort", abort); };
    signal.addEventListener("abort", abort, { once: true });
    armStallTimer();
    xhr.send(body);
  });
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { signal.removeEventListener("abort", stop); resolve(); }, ms);
    const stop = () => { clearTimeout(timer); reject(new UploadCancelled()); };
    signal.addEventListener("abort", stop, { once: true });
  });
}

function untilOnline(signal) {
  if (navigator.onLine) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => { window.removeEventListener("online", done); signal.removeEventListener("abort", stop); resolve(); };
    const stop = () => { window.removeEventListener("online", done); reject(new UploadCancelled()); };
    window.addEventListener("online", done);
    signal.addEventListener("abort", stop, { once: true });
  });
}

/**
 * One file's upload. Events: "change" (state or note), "progress", "job" (job id known).
 * States: queued → starting|resuming → uploading → completing → done | failed | cancelled.
 */
export class FileUpload extends EventTarget {
  constructor(file, { slots, concurrency = DEFAULT_CONCURRENCY }) {
    super();
    this.file = file;
    this.slots = slots;
    this.concurrency = concurrency;
    this.state = "queued";
    this.note = "";
    this.jobId = null;
    this.resumedParts = 0;
    this.doneBytes = 0; // bytes of finished parts (or of a finished POST)
    this.inflight = new Map(); // part number → bytes sent so far
    this.transferred = 0; // monotonic: every byte put on the wire, retries included
    this.meter = new RateMeter();
    this.controller = new AbortController();
    this.cancelRequested = false; // set by cancel(), to tell a cancel from a failure
  }

  get signal() { return this.controller.signal; }
  get active() { return !["done", "failed", "cancelled"].includes(this.state); }
  get loaded() {
    let sum = this.doneBytes;
    for (const bytes of this.inflight.values()) sum += bytes;
    return Math.min(sum, this.file.size);
  }

  stats() {
    const rate = this.state === "uploading" ? this.meter.rate(this.transferred) : 0;
    const left = this.file.size - this.loaded;
    return { loaded: this.loaded, total: this.file.size, rate, secondsLeft: rate > 0 ? left / rate : null };
  }

  setState(state, note = "") {
    this.state = state;
    this.note = note;
    this.dispatchEvent(new Event("change"));
  }

  setNote(note) {
    this.note = note;
    this.dispatchEvent(new Event("change"));
  }

  cancel() {
    if (this.state === "completing" || !this.active) return; // too late to take back
    this.cancelRequested = true;
    this.controller.abort();
  }

  // Resolves when the upload ends, whatever the outcome; see `state` and `note`.
  async start() {
    try {
      const plan = await this.planOrResume();
      if (plan.method === "POST") await this.postWhole(plan);
      else if (plan.method === "MULTIPART") await this.sendParts(plan);
      memory.forget(this.file);
      this.doneBytes = this.file.size;
      this.inflight.clear();
      this.setState("done", plan.method === "DONE" ? "This file had already finished uploading." : this.resumeNote());
    } catch (error) {
      if (this.cancelRequested) await this.cleanUpCancelled();
      else this.setState("failed", error.message);
    }
  }

  async cleanUpCancelled() {
    memory.forget(this.file);
    this.setState("cancelled", "Cancelled.");
    if (!this.jobId) return;
    try {
      await api.abortUpload(this.jobId);
    } catch (error) {
      this.setNote(`Cancelled here, but the server said: ${error.message}`);
    }
  }

  setJobId(jobId) {
    this.jobId = jobId;
    this.dispatchEvent(new Event("job"));
  }

  async planOrResume() {
    const record = memory.recall(this.file);
    if (record) {
      this.setJobId(record.job_id);
      this.setState("resuming", "Asking the server which parts it already has…");
      let listing = null;
      try {
        listing = await api.uploadedParts(record.job_id, this.signal);
      } catch (error) {
        // Unreachable or refused (no valid token yet): keep the record, so that
        // choosing the file again later still resumes.
        if (!(error instanceof ApiError) || error.status === 0 || error.code === "UNAUTHENTICATED") throw error;
      }
      if (listing && listing.part_size === record.part_size && listing.part_count === record.part_count) {
        return { method: "MULTIPART", ...listing, done: listing.parts || [], parts: [] };
      }
      // The server no longer has that upload: finished (a reload right after
      // completing), cancelled elsewhere or expired. Only the first needs no new upload.
      memory.forget(this.file);
      const job = await api.getJob(record.job_id).catch(() => null);
      if (job && UPLOADED_STATUSES.has(job.status)) return { method: "DONE" };
      this.jobId = null;
    }
    this.setState("starting");
    // Not abortable: a job created on the server must be known here, so that a
    // Cancel pressed meanwhile can abort it rather than leave it to expire.
    const created = await api.createUpload(this.file);
    this.setJobId(created.job_id);
    if (this.signal.aborted) throw new UploadCancelled();
    const upload = created.upload;
    if (upload.method === "MULTIPART") {
      memory.remember(this.file, { job_id: created.job_id, part_size: upload.part_size, part_count: upload.part_count });
    } else if (upload.method !== "POST") {
      throw new Error(`This page cannot upload with method ${upload.method}.`);
    }
    return upload;
  }

  // Runs `attempt` until it succeeds, backing off between tries; waits for the
  // browser to be online again rather than spending tries while offline.
  async retrying(label, attempt) {
    for (let tries = 1; ; tries += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (this.signal.aborted) throw new UploadCancelled();
        if (!isRetryable(error) || tries >= MAX_ATTEMPTS) throw error;
        if (!navigator.onLine) {
          this.setNote("Waiting for the connection…");
          await untilOnline(this.signal);
          tries -= 1;
        }
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (tries - 1)) * (0.5 + Math.random() / 2);
        this.setNote(`${label} failed (${error.message}); retrying in ${Math.ceil(delay / 1000)} s.`);
        await sleep(delay, this.signal);
        this.setNote(this.resumeNote());
      }
    }
  }

  track(key, loaded) {
    this.transferred += Math.max(0, loaded - (this.inflight.get(key) || 0));
    this.inflight.set(key, loaded);
    this.dispatchEvent(new Event("progress"));
  }

  async postWhole(upload) {
    this.setState("uploading");
    await this.retrying("The upload", async () => {
      const form = new FormData();
      // S3 reads the policy fields first and ignores anything after `file`.
      for (const [name, value] of Object.entries(upload.fields || {})) form.append(name, value);
      form.append("file", this.file);
      await this.slots.acquire(this.signal);
      try {
        this.inflight.set(0, 0);
        const xhr = await send("POST", upload.url, form, this.signal, (loaded) =>
          this.track(0, Math.min(loaded, this.file.size)));
        // A presigned POST cannot be re-signed: a 403 here is final.
        if (xhr.status === 403) throw new Error(storageMessage(xhr));
        if (xhr.status < 200 || xhr.status >= 300) throw new TransferError(storageMessage(xhr), xhr.status);
      } finally {
        this.inflight.delete(0);
        this.slots.release();
      }
    });
  }

  resumeNote() {
    if (!this.resumedParts) return "";
    return `Resumed: ${this.resumedParts} of ${Math.ceil(this.file.size / this.partSize)} parts were already on the server.`;
  }

  partRange(partNumber) {
    const start = (partNumber - 1) * this.partSize;
    return [start, Math.min(start + this.partSize, this.file.size)];
  }

  async sendParts(plan) {
    this.partSize = plan.part_size;
    const count = Math.ceil(this.file.size / this.partSize);
    if (count !== plan.part_count) throw new Error("The server's upload plan does not match this file's size.");
    this.urls = new Map();
    this.storeUrls(plan.parts, plan.expires_at);
    this.etags = new Map();
    this.doneBytes = 0;
    for (const part of plan.done || []) {
      const [start, end] = this.partRange(part.part_number);
      // A part of the wrong size is not ours to keep: upload it again.
      if (part.size === end - start) {
        this.etags.set(part.part_number, part.etag);
        this.doneBytes += part.size;
      }
    }
    this.resumedParts = this.etags.size;
    this.setState("uploading", this.resumeNote());

    for (let pass = 1; ; pass += 1) {
      const todo = [];
      for (let n = 1; n <= count; n += 1) if (!this.etags.has(n)) todo.push(n);
      await this.sendPartQueue(todo);
      this.setState("completing", "Putting the parts together…");
      const parts = [...this.etags].sort((a, b) => a[0] - b[0]).map(([n, etag]) => ({ part_number: n, etag }));
      try {
        await this.retrying("Completing", () => api.completeUpload(this.jobId, parts, this.signal));
        return;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        // A lost answer to an earlier try that did complete shows up as an error now.
        const job = await api.getJob(this.jobId).catch(() => null);
        if (job && UPLOADED_STATUSES.has(job.status)) return;
        if (error.code !== "UPLOAD_INCOMPLETE" || pass > 1) throw error;
        // Storage disagrees with what we sent: trust its list and send the rest again.
        await this.resync();
        this.setState("uploading", "Sending parts the server is missing…");
      }
    }
  }

  async resync() {
    const listing = await api.uploadedParts(this.jobId, this.signal);
    const held = new Map((listing.parts || []).map((part) => [part.part_number, part.etag]));
    for (const [n, etag] of [...this.etags]) {
      if (held.get(n) !== etag) {
        this.etags.delete(n);
        const [start, end] = this.partRange(n);
        this.doneBytes -= end - start;
      }
    }
  }

  async sendPartQueue(todo) {
    const queue = [...todo];
    const worker = async () => {
      while (queue.length && !this.signal.aborted) await this.sendPart(queue.shift(), queue);
    };
    const workers = Array.from({ length: Math.min(this.concurrency, queue.length) }, worker);
    try {
      await Promise.all(workers);
    } catch (error) {
      // One part gave up: stop the others (they reject as cancelled, which Promise.all ignores).
      if (!this.signal.aborted) this.controller.abort();
      throw error;
    }
  }

  async sendPart(n, queue) {
    const [start, end] = this.partRange(n);
    await this.retrying(`Part ${n}`, async () => {
      await this.slots.acquire(this.signal);
      try {
        const url = await this.urlFor(n, queue);
        this.inflight.set(n, 0);
        const xhr = await send("PUT", url, this.file.slice(start, end), this.signal, (loaded) => this.track(n, loaded));
        if (xhr.status === 403) this.urls.delete(n); // expired or refused: the retry asks for a fresh URL
        if (xhr.status === 404) throw new Error("The upload no longer exists on the server (cancelled or expired).");
        if (xhr.status < 200 || xhr.status >= 300) throw new TransferError(storageMessage(xhr), xhr.status);
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new Error("Storage did not expose the part's ETag (the bucket's CORS must expose it).");
        this.etags.set(n, etag);
        this.doneBytes += end - start;
      } finally {
        this.inflight.delete(n);
        this.slots.release();
        this.dispatchEvent(new Event("progress"));
      }
    });
  }

  storeUrls(parts, expiresAt) {
    const now = Date.now();
    const expires = Date.parse(expiresAt) || now + 10 * 60_000;
    // Short-lived URLs (a test setting) get a proportionally short margin.
    const useBefore = expires - Math.min(URL_EXPIRY_MARGIN_MS, (expires - now) / 4);
    for (const part of parts || []) this.urls.set(part.part_number, { url: part.url, useBefore });
  }

  usableUrl(n) {
    const known = this.urls.get(n);
    return known && known.useBefore > Date.now() ? known.url : null;
  }

  // A valid URL for part `n`. Concurrent callers share one request, which also
  // fetches URLs for the next parts in the queue.
  async urlFor(n, queue) {
    for (;;) {
      const url = this.usableUrl(n);
      if (url) return url;
      if (!this.urlRequest) break;
      await this.urlRequest.catch(() => {});
    }
    const wanted = [n, ...queue.filter((m) => !this.usableUrl(m))].slice(0, URL_BATCH_SIZE);
    this.urlRequest = api.partUrls(this.jobId, wanted, this.signal)
      .then((answer) => this.storeUrls(answer.parts, answer.expires_at))
      .finally(() => { this.urlRequest = null; });
    await this.urlRequest;
    const fresh = this.urls.get(n);
    if (!fresh) throw new Error(`The server gave no URL for part ${n}.`);
    return fresh.url;
  }
}

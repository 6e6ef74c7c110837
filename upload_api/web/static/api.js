// The vidpipe HTTP API as the page sees it.
//
// Every URL is relative and resolved against document.baseURI, because the API
// is served under a prefix (/_aws/execute-api/{apiId}/ on the local stack, a
// stage name on AWS).

export class ApiError extends Error {
  constructor(message, { status = 0, code = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function apiUrl(path) {
  return new URL(path, document.baseURI).toString();
}

// --- the API token -------------------------------------------------------------
// `vidpipe up` prints the page's address with the token in the fragment
// (#token=…), which browsers never send to a server. The page keeps it in
// localStorage (this origin only, so it survives a reload) and takes it out of
// the address bar, so a copied link does not hand it on.

const TOKEN_KEY = "vidpipe.apiToken";
// Fired on window when the API refuses the token (or its absence).
export const UNAUTHORIZED_EVENT = "vidpipe:unauthorized";
let memoryToken = "";

export function apiToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    return "";
  }
}

export function setApiToken(token) {
  try {
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    else window.localStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    // Storage disabled: the token lasts as long as this page.
  }
  memoryToken = token;
}

/** Moves #token=… from the address into storage; answers the fragment's other parameters. */
export function adoptTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    setApiToken(token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", rest ? `#${rest}` : location.pathname + location.search);
  }
  return params;
}

function authHeaders() {
  const token = apiToken() || memoryToken;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// The API answers errors as {error: {code, message}}; API Gateway itself (a
// timeout, a missing route) answers {message}. Fall back to the HTTP status.
async function toApiError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Not JSON: keep the status line below.
  }
  if (body && body.error && body.error.message) {
    return new ApiError(body.error.message, { status: response.status, code: body.error.code || "" });
  }
  if (response.status === 401 || response.status === 403) {
    // API Gateway's own refusal ({message: "Unauthorized"|"Forbidden"}): no or a wrong token.
    return new ApiError("The API needs a valid API token (tokens expire and can be revoked): " +
      "open the address `vidpipe up` printed, or enter a new token from `vidpipe token`.",
      { status: response.status, code: "UNAUTHENTICATED" });
  }
  const message = body && typeof body.message === "string"
    ? body.message
    : `The server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(message, { status: response.status });
}

export async function apiJson(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      signal,
      headers: { ...authHeaders(), ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    // status 0 marks "never got an answer": callers may retry those.
    throw new ApiError("The server could not be reached (network error).", { status: 0 });
  }
  if (!response.ok) {
    const error = await toApiError(response);
    if (error.code === "UNAUTHENTICATED") window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    throw error;
  }
  // 204 No Content (a DELETE) has no body to parse.
  return response.status === 204 ? null : response.json();
}

const job = (jobId) => encodeURIComponent(jobId);

export const api = {
  createUpload: (file, signal) => apiJson("uploads", {
    method: "POST",
    signal,
    body: {
      filename: file.name,
      // Browsers leave type empty for extensions they do not know; let the API
      // decide whether that is acceptable rather than guessing here.
      content_type: file.type || "application/octet-stream",
      size: file.size,
    },
  }),
  partUrls: (jobId, partNumbers, signal) =>
    apiJson(`uploads/${job(jobId)}/parts`, { method: "POST", body: { part_numbers: partNumbers }, signal }),
  uploadedParts: (jobId, signal) => apiJson(`uploads/${job(jobId)}/parts`, { signal }),
  completeUpload: (jobId, parts, signal) =>
    apiJson(`uploads/${job(jobId)}/complete`, { method: "POST", body: { parts }, signal }),
  abortUpload: (jobId) => apiJson(`uploads/${job(jobId)}`, { method: "DELETE" }),
  getJob: (jobId) => apiJson(`jobs/${job(jobId)}`),
  // An empty title removes it (the API takes null for "no title").
  renameJob: (jobId, title) => apiJson(`jobs/${job(jobId)}`, { method: "PATCH", body: { title: title || null } }),
  deleteJob: (jobId) => apiJson(`jobs/${job(jobId)}`, { method: "DELETE" }),
  listJobs: (nextToken) =>
    apiJson(`jobs?limit=20${nextToken ? `&next_token=${encodeURIComponent(nextToken)}` : ""}`),
};

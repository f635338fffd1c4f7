// The gateway's REST API. The access token lives in memory only; the refresh token in sessionStorage (this tab,
// gone when it closes). No cookies: every call carries `Authorization: Bearer`, so there is no CSRF surface.

const REFRESH_KEY = "trading.refresh_token";
const EARLY_REFRESH_MS = 30_000;

let session = null; // {accessToken, expiresAt, username, roles}: the login's or the last refresh's answer
let refreshing = null; // one refresh at a time: a refresh token is single use, a second use ends the session

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(field ? `${detail} (${field})` : detail);
    this.status = status;
    this.field = field;
  }
}

async function problem(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  const field = body.errors?.[0]?.field ?? body.field;
  return new ApiError(response.status, body.detail || body.title || response.statusText, field);
}

function keep(tokens) {
  session = {
    accessToken: tokens.access_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
    username: tokens.username,
    roles: tokens.roles || [],
  };
  if (tokens.refresh_token) sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
}

export function forget() {
  session = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

export async function login(username, password, totpCode) {
  const body = { username, password };
  if (totpCode) body.totp_code = totpCode;
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await problem(response);
  keep(await response.json());
  return currentUser();
}

export function hasStoredSession() {
  return Boolean(sessionStorage.getItem(REFRESH_KEY));
}

export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const refreshToken = sessionStorage.getItem(REFRESH_KEY);
      if (!refreshToken) throw new ApiError(401, "not logged in");
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      if (!response.ok) {
        const error = await problem(response);
        if (response.status === 401) forget();
        throw error;
      }
      keep(await response.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// The access token while it has more than EARLY_REFRESH_MS to live, else null.
function freshToken() {
  return session && session.expiresAt - Date.now() >= EARLY_REFRESH_MS ? session.accessToken : null;
}

export async function accessToken() {
  if (!freshToken()) await refresh();
  return session.accessToken;
}

export async function call(path, { method = "GET", params, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  // with a fresh token at hand the request leaves at once, before the caller's next line (no await first)
  const send = async () =>
    fetch(url, {
      method,
      headers: {
        Authorization: `Bearer ${freshToken() ?? (await accessToken())}`,
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let response = await send();
  if (response.status === 401 && hasStoredSession()) {
    await refresh(); // the token was revoked or expired early: once more with a fresh one
    response = await send();
  }
  if (!response.ok) throw await problem(response);
  if (response.status === 204) return null;
  return response.json();
}

// The user and their roles, from the token answer itself (login and refresh carry them), so nothing waits for
// GET /api/v1/auth/me before the shell is drawn.
export function currentUser() {
  return session ? { subject: session.username, roles: session.roles } : null;
}

export function hasRole(role) {
  return Boolean(session?.roles.includes(role));
}

export async function logout() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  const headers = { "Content-Type": "application/json" };
  if (session) headers.Authorization = `Bearer ${session.accessToken}`;
  try {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers,
      body: JSON.stringify(refreshToken ? { refresh_token: refreshToken } : {}),
    });
  } finally {
    forget();
  }
}

// A list route: {items, next_cursor}.
async function read(path, params) {
  const page = await call(path, { params: { limit: 100, ...params } });
  return { items: page?.items ?? [], next: page?.next_cursor ?? null };
}

// Lists asked for before their page is drawn (preload), each answer kept for the page's first list() of it.
const preloaded = new Map();

export function list(path, params = {}) {
  const key = JSON.stringify([path, params]);
  const early = preloaded.get(key);
  preloaded.delete(key);
  return early ?? read(path, params);
}

// Starts list(path, params) now; the page's own list(path, params) gets this answer (once).
export function preload(path, params = {}) {
  const answer = read(path, params);
  answer.catch(() => {}); // the page that takes it shows the error
  preloaded.set(JSON.stringify([path, params]), answer);
}

// Drops what no page took (once the first page is drawn: a later page reads afresh).
export function dropPreloaded() {
  preloaded.clear();
}

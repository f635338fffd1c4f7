// The gateway's REST API. The access token lives in memory only; the refresh token in sessionStorage (this tab,
// gone when it closes). No cookies: every call carries `Authorization: Bearer`, so there is no CSRF surface.

const REFRESH_KEY = "trading.refresh_token";
const EARLY_REFRESH_MS = 30_000;

let session = null; // {accessToken, expiresAt, username, roles}
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
  return me();
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

export async function accessToken() {
  if (!session || session.expiresAt - Date.now() < EARLY_REFRESH_MS) await refresh();
  return session.accessToken;
}

export async function call(path, { method = "GET", params, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const send = async () =>
    fetch(url, {
      method,
      headers: {
        Authorization: `Bearer ${await accessToken()}`,
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

let identity = null;

export async function me() {
  identity = await call("/api/v1/auth/me");
  return identity;
}

export function currentUser() {
  return identity;
}

export function hasRole(role) {
  return Boolean(identity?.roles?.includes(role));
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
    identity = null;
  }
}

// A list route: {items, next_cursor}.
export async function list(path, params = {}) {
  const page = await call(path, { params: { limit: 100, ...params } });
  return { items: page?.items ?? [], next: page?.next_cursor ?? null };
}

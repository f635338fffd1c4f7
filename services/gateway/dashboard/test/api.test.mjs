// The API client's session and early reads (node --test; tests/browser/test_client_logic.py runs it): the user and
// roles come from the token answer itself, a request with a fresh token leaves before the caller's next line, and a
// preloaded list is sent once, its answer taken by the page's first list() of it only.
import assert from "node:assert/strict";
import test from "node:test";
import { currentUser, dropPreloaded, hasRole, list, preload, refresh } from "../src/api.js";

const sent = [];
const store = new Map();
globalThis.location = new URL("http://gateway/app/overview");
globalThis.sessionStorage = {
  getItem: (key) => store.get(key) ?? null,
  setItem: (key, value) => store.set(key, String(value)),
  removeItem: (key) => store.delete(key),
};
globalThis.fetch = async (url, init = {}) => {
  const path = new URL(url, location.origin).pathname;
  sent.push({ path, url: String(url), authorization: init.headers?.Authorization });
  const body =
    path === "/api/v1/auth/refresh"
      ? { access_token: `access-${sent.length}`, expires_in: 900, refresh_token: `refresh-${sent.length}`, session_id: "s-1", username: "vera", roles: ["viewer"] }
      : { items: [{ n: sent.length }], next_cursor: null };
  return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
};

test("the refresh answer names the user and their roles: no other request", async () => {
  store.set("trading.refresh_token", "refresh-0");
  sent.length = 0;
  await refresh();
  assert.deepEqual(sent.map((r) => r.path), ["/api/v1/auth/refresh"]);
  assert.deepEqual(currentUser(), { subject: "vera", roles: ["viewer"] });
  assert.ok(hasRole("viewer") && !hasRole("risk-officer"));
  assert.equal(store.get("trading.refresh_token"), "refresh-1");
});

test("with a fresh token a request leaves before the caller's next line", async () => {
  sent.length = 0;
  const answer = list("/api/v1/orders", { symbol: "IBM" });
  assert.equal(sent.length, 1);
  assert.equal(sent[0].authorization, "Bearer access-1");
  assert.equal(new URL(sent[0].url).search, "?limit=100&symbol=IBM");
  assert.deepEqual(await answer, { items: [{ n: 1 }], next: null });
});

test("a preloaded list is sent once and taken once; what no page took is dropped", async () => {
  sent.length = 0;
  preload("/api/v1/equity", { limit: 500 });
  preload("/api/v1/positions", { limit: 500 });
  assert.equal(sent.length, 2);
  assert.deepEqual(await list("/api/v1/equity", { limit: 500 }), { items: [{ n: 1 }], next: null });
  assert.equal(sent.length, 2, "the page's list took the preloaded answer");
  await list("/api/v1/equity", { limit: 500 });
  assert.equal(sent.length, 3, "a second list reads afresh");
  dropPreloaded();
  await list("/api/v1/positions", { limit: 500 });
  assert.equal(sent.length, 4, "a dropped preload is not served later");
});

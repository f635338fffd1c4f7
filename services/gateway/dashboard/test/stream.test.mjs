// The live stream's parser and its reconnect backoff (node --test; tests/browser/test_client_logic.py runs it).
import assert from "node:assert/strict";
import test from "node:test";
import { money } from "../src/dom.js";
import { EventStreamParser, backoff } from "../src/stream.js";

function parse(chunks) {
  const events = [];
  const comments = [];
  const parser = new EventStreamParser((e) => events.push(e), (c) => comments.push(c));
  for (const chunk of chunks) parser.push(chunk);
  return { events, comments };
}

test("events split anywhere across chunks come out whole", () => {
  const text = 'retry: 2000\nevent: fills\nid: 7\ndata: {"fill_id":"f-1"}\n\n: heartbeat\n\nevent: risk\r\ndata: {"a":\r\ndata: 1}\r\n\r\n';
  for (let size = 1; size <= text.length; size += 1) {
    const chunks = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
    const { events, comments } = parse(chunks);
    assert.deepEqual(events, [
      { event: "fills", data: '{"fill_id":"f-1"}', id: "7" },
      { event: "risk", data: '{"a":\n1}', id: null },
    ]);
    assert.deepEqual(comments, ["heartbeat"]);
  }
});

test("an event without data is not dispatched, one without a name is a message", () => {
  const { events } = parse(["event: nothing\n\n", "data: x\n\n"]);
  assert.deepEqual(events, [{ event: "message", data: "x", id: null }]);
});

test("the backoff doubles up to its cap, each wait between half and all of its step", () => {
  const low = [0, 1, 2, 3, 4, 10, 20].map((n) => backoff(n, () => 0));
  const high = [0, 1, 2, 3, 4, 10, 20].map((n) => backoff(n, () => 0.999999));
  assert.deepEqual(low, [250, 500, 1000, 2000, 4000, 15000, 15000]);
  high.forEach((h, i) => assert.ok(h > low[i] && h < low[i] * 2 + 1));
});

test("money is rounded half up from its decimal string, never through a float", () => {
  assert.equal(money("99960.2098000048"), "99,960.21");
  assert.equal(money("0.005"), "0.01");
  assert.equal(money("999.995"), "1,000.00");
  assert.equal(money("-0.004"), "0.00");
  assert.equal(money("-1234567.125"), "-1,234,567.13");
  assert.equal(money("12345678901234567890.015"), "12,345,678,901,234,567,890.02");
  assert.equal(money(null), "–");
  assert.equal(money("n/a"), "n/a");
});

test("a burst of live events re-reads once at once and once after the interval", async () => {
  const { throttle } = await import("../src/ui.js");
  let calls = 0;
  const reload = throttle(() => {
    calls += 1;
  }, 100);
  for (let i = 0; i < 50; i += 1) reload();
  assert.equal(calls, 1);
  await new Promise((resolve) => setTimeout(resolve, 180));
  assert.equal(calls, 2);
});

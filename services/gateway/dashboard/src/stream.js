// The live push: GET /api/v1/stream (server-sent events) read with fetch() streaming, so the bearer token goes in
// the Authorization header, never in a URL (EventSource cannot send headers). A lost connection is reported
// ("reconnecting in N s") and retried with exponential backoff and jitter; silence longer than the heartbeat
// allows (the server sends a comment every 15 s) counts as lost.

import { accessToken, refresh } from "./api.js";

export const CHANNELS = [
  "orders",
  "fills",
  "positions",
  "equity",
  "risk",
  "risk_changes",
  "breaches",
  "alerts",
  "quality",
  "execution",
  "execution_orders",
  "pnl",
  "deadletters",
  "models",
  "audit",
];
const SILENCE_MS = 40_000;
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

// Equal jitter: half the exponential step, plus a random part of the other half (clients that lost the same server
// do not all come back at the same instant).
export function backoff(attempt, random = Math.random) {
  const step = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

// Parses an event-stream body incrementally; calls onEvent({event, data, id}) for each complete event and
// onComment() for each heartbeat.
export class EventStreamParser {
  constructor(onEvent, onComment = () => {}) {
    this.buffer = "";
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (end === this.buffer.length - 1 && this.buffer.endsWith("\r")) break; // a "\r\n" split across chunks
      const line = this.buffer.slice(0, end);
      const newline = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      this.buffer = this.buffer.slice(end + newline);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      this.reset();
      return;
    }
    if (line.startsWith(":")) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
  }
}

export class LiveStream {
  // onEvent(channel, item, id); onStatus({state: "connecting"|"live"|"reconnecting", delayMs?, error?})
  constructor({ channels = CHANNELS, onEvent, onStatus }) {
    this.channels = channels;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.stopped = false;
    this.controller = null;
    this.lastId = null;
    this.attempt = 0;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  async loop() {
    while (!this.stopped) {
      try {
        this.onStatus({ state: "connecting" });
        await this.connect();
        if (this.stopped) return;
        throw new Error("the stream ended");
      } catch (error) {
        if (this.stopped) return;
        const delayMs = backoff(this.attempt++);
        this.onStatus({ state: "reconnecting", delayMs, error: String(error?.message || error) });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  async connect() {
    this.controller = new AbortController();
    const headers = { Authorization: `Bearer ${await accessToken()}`, Accept: "text/event-stream" };
    if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
    const url = `/api/v1/stream?topics=${this.channels.join(",")}`;
    const response = await fetch(url, { headers, signal: this.controller.signal, cache: "no-store" });
    if (response.status === 401) {
      await refresh();
      throw new Error("the stream refused the token; refreshed");
    }
    if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`);
    this.attempt = 0;
    this.onStatus({ state: "live" });
    const parser = new EventStreamParser((message) => {
      if (message.id !== null) this.lastId = message.id;
      let item;
      try {
        item = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onEvent(message.event, item, message.id);
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => this.controller.abort(), SILENCE_MS);
    };
    try {
      arm();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        parser.push(value);
      }
    } finally {
      clearTimeout(watchdog);
    }
  }
}

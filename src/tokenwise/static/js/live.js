// The live connection: a WebSocket opened with a single-use ticket (POST /api/ws/ticket; never a token
// in a URL), reconnecting with backoff and resuming each run after the last seq the page has. When the
// WebSocket cannot connect at all while HTTP works (a proxy blocks it), it falls back on its own to
// Server-Sent Events for the events and HTTP POSTs for the messages, and says so.
//
// state: "connecting" | "connected" | "reconnecting" | "offline" | "fallback"; a "state" event fires
// on every change, with `note` saying why in plain words.

import { followRunOverSse } from "./sse.js";
import { ApiError, NetworkError, SessionExpired, closeMeaning } from "./words.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const SLOW_RETRY_MS = 15000;
// Consecutive attempts that never got the welcome frame, while HTTP works, before falling back.
const FALLBACK_FIRST = 2;
const FALLBACK_AFTER_DROP = 3;
const PING_EVERY_MS = 25000;
const BLOCKED = "The live connection is blocked on this network, so updates arrive over Server-Sent Events.";

export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Live extends EventTarget {
  state = "connecting";
  note = "";
  transport = "websocket";
  connectionId = null;
  connections = 0;
  serverOffsetMs = 0;
  #session;
  #hooks;
  #ws = null;
  #stopped = true;
  #attempt = 0;
  #failures = 0;
  #everConnected = false;
  #timer = null;
  #pinger = null;
  #awaitingPong = false;
  #open = false; // the current socket got its welcome and has not closed
  #pending = new Map(); // client_message_id -> {frame, request, resolve, reject}
  #followers = new Map(); // run id -> AbortController of its SSE stream

  /** hooks: onEvent(event), activeRuns() -> [run id], lastSeq(run id) -> seq */
  constructor(session, hooks) {
    super();
    this.#session = session;
    this.#hooks = hooks;
  }

  start() {
    this.#stopped = false;
    window.addEventListener("online", this.#online);
    window.addEventListener("offline", this.#offline);
    this.#session.addEventListener("token", this.#tokenRenewed);
    this.#pinger = setInterval(this.#ping, PING_EVERY_MS);
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#pinger);
    window.removeEventListener("online", this.#online);
    window.removeEventListener("offline", this.#offline);
    this.#session.removeEventListener("token", this.#tokenRenewed);
    this.#ws?.close(1000, "signed out");
    this.#ws = null;
    this.#open = false;
    this.unfollowAll();
    for (const pending of this.#pending.values()) pending.reject(new SessionExpired());
    this.#pending.clear();
  }

  /** Ask a question: resolves with {run_id, thread_id} once the server has it. */
  submit(content, threadId) {
    const request = { content, threadId, clientMessageId: newId() };
    if (this.transport === "sse") return this.#submitOverHttp(request);
    const frame = { type: "user_message", content, client_message_id: request.clientMessageId };
    if (threadId) frame.thread_id = threadId;
    return new Promise((resolve, reject) => {
      this.#pending.set(request.clientMessageId, { frame, request, resolve, reject });
      this.#send(frame); // if not connected now, it is sent (again, idempotently) after the welcome
    });
  }

  /** Make sure a run's events keep coming, after what the page already has. */
  follow(runId) {
    if (this.transport === "websocket") {
      this.#send({ type: "resume", run_id: runId, after_seq: this.#hooks.lastSeq(runId) });
      return; // when not connected, the welcome resumes every active run
    }
    if (this.#followers.has(runId)) return;
    const controller = new AbortController();
    this.#followers.set(runId, controller);
    followRunOverSse(this.#session, runId, {
      afterSeq: () => this.#hooks.lastSeq(runId),
      onEvent: (event) => this.#hooks.onEvent(event),
      signal: controller.signal,
    })
      .catch((error) => {
        if (!controller.signal.aborted && !(error instanceof SessionExpired)) {
          this.#problem("The live updates for this answer stopped. Reload the page to see the rest.");
        }
      })
      .finally(() => {
        if (this.#followers.get(runId) === controller) this.#followers.delete(runId);
      });
  }

  /** Stop following every run (another thread is shown). */
  unfollowAll() {
    for (const controller of this.#followers.values()) controller.abort();
    this.#followers.clear();
  }

  async cancelRun(runId) {
    if (!this.#send({ type: "stop_agent", run_id: runId })) {
      await this.#session.json(`/api/runs/${encodeURIComponent(runId)}/cancel`, { method: "POST" });
    }
  }

  // ---- connection -------------------------------------------------------------------------------

  #setState(state, note = "") {
    this.state = state;
    this.note = note;
    this.dispatchEvent(new Event("state"));
  }

  #problem(text) {
    this.dispatchEvent(new CustomEvent("problem", { detail: text }));
  }

  async #connect() {
    if (this.#stopped || this.transport !== "websocket") return;
    if (!navigator.onLine) {
      this.#setState("offline", "You are offline. Tokenwise reconnects when the network is back.");
      return;
    }
    if (this.state !== "offline") this.#setState(this.#everConnected ? "reconnecting" : "connecting", this.note);
    let ticket;
    try {
      ({ ticket } = await this.#session.json("/api/ws/ticket", { method: "POST" }));
    } catch (error) {
      if (error instanceof SessionExpired || this.#stopped) return; // the app asks to sign in again
      if (error instanceof NetworkError) this.#setState("offline", "The server cannot be reached. Retrying…");
      this.#retry();
      return;
    }
    if (this.#stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.#ws = ws;
    let welcomed = false;
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (welcomed) this.#frame(frame);
      else if (frame.type === "connection_established") {
        welcomed = true;
        this.#welcome(frame);
      }
    };
    ws.onclose = (close) => {
      if (this.#ws === ws) {
        this.#ws = null;
        this.#open = false;
      }
      if (!this.#stopped) this.#closed(close.code, welcomed);
    };
  }

  #welcome(frame) {
    this.#open = true;
    this.#attempt = 0;
    this.#failures = 0;
    this.#everConnected = true;
    this.#awaitingPong = false;
    this.connectionId = frame.connection_id;
    this.connections += 1;
    this.serverOffsetMs = Date.parse(frame.server_time) - Date.now();
    this.#setState("connected");
    for (const pending of this.#pending.values()) this.#send(pending.frame);
    for (const runId of this.#hooks.activeRuns()) this.follow(runId);
  }

  async #closed(code, welcomed) {
    const meaning = closeMeaning(code);
    if (meaning.action === "reauth") {
      try {
        await this.#session.refresh();
      } catch (error) {
        if (error instanceof SessionExpired) return; // the session tells the app to ask for a sign-in
      }
      this.#setState("reconnecting");
      this.#retry(0);
      return;
    }
    if (meaning.action === "fallback") {
      this.#fallBack(meaning.text);
      return;
    }
    if (!welcomed) this.#failures += 1;
    const limit = this.#everConnected ? FALLBACK_AFTER_DROP : FALLBACK_FIRST;
    if (!welcomed && this.#failures >= limit && navigator.onLine) {
      // Each attempt bought its ticket over HTTP, so the server is there: something blocks WebSockets.
      this.#fallBack(BLOCKED);
      return;
    }
    this.#setState(navigator.onLine ? "reconnecting" : "offline", meaning.text);
    this.#retry(meaning.action === "slow" ? SLOW_RETRY_MS : undefined);
  }

  #retry(delayMs) {
    clearTimeout(this.#timer);
    const base = delayMs ?? BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)];
    this.#attempt += 1;
    this.#timer = setTimeout(() => this.#connect(), base * (0.8 + Math.random() * 0.4));
  }

  #fallBack(note) {
    this.transport = "sse";
    clearTimeout(this.#timer);
    this.#setState("fallback", note);
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      this.#submitOverHttp(pending.request).then(pending.resolve, pending.reject);
    }
    for (const runId of this.#hooks.activeRuns()) this.follow(runId);
  }

  #send(frame) {
    if (!this.#open || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  #frame(frame) {
    if (frame.type === "ack") {
      const pending = this.#pending.get(frame.client_message_id);
      if (pending) {
        this.#pending.delete(frame.client_message_id);
        pending.resolve(frame);
      }
    } else if ("run_id" in frame && "seq" in frame) {
      this.#hooks.onEvent(frame);
    } else if (frame.type === "pong") {
      this.#awaitingPong = false;
    } else if (frame.type === "error") {
      this.#error(frame);
    } else if (frame.type === "server_shutdown") {
      this.note = "The server is restarting; reconnecting.";
    }
  }

  #error(frame) {
    // token_expired: the close 4401 that follows renews and reconnects. service_unavailable for a
    // message: it is sent again after the reconnect.
    if (frame.code === "token_expired" || frame.code === "service_unavailable") return;
    const id = frame.client_message_id ?? (this.#pending.size === 1 ? [...this.#pending.keys()][0] : null);
    const pending = id ? this.#pending.get(id) : null;
    if (pending && ["invalid_message", "not_found", "rate_limited"].includes(frame.code)) {
      this.#pending.delete(id);
      pending.reject(new ApiError(0, { error: frame }));
    }
  }

  async #submitOverHttp({ content, threadId, clientMessageId }) {
    let id = threadId;
    if (!id) {
      const thread = await this.#session.json("/api/threads", {
        method: "POST",
        body: { title: content.trim().slice(0, 80) },
      });
      id = thread.id;
    }
    const reply = await this.#session.json(`/api/threads/${encodeURIComponent(id)}/messages`, {
      method: "POST",
      body: { content, client_message_id: clientMessageId },
    });
    return { run_id: reply.run_id, thread_id: id, message_id: reply.message_id };
  }

  #tokenRenewed = () => {
    this.#send({ type: "auth_refresh", token: this.#session.accessToken });
  };

  #ping = () => {
    if (!this.#open) return;
    if (this.#awaitingPong) {
      this.#ws?.close(4000, "no pong"); // the connection died silently: reconnect and resume
      return;
    }
    this.#awaitingPong = this.#send({ type: "ping" });
  };

  #online = () => {
    if (this.transport === "sse") {
      this.#setState("fallback", BLOCKED);
    } else if (this.#open) {
      // The socket lived through it: check it with a ping (a dead one is replaced by the next tick).
      this.#setState("connected");
      this.#awaitingPong = this.#send({ type: "ping" });
    } else if (!this.#ws) {
      this.#attempt = 0;
      this.#retry(0);
    }
  };

  #offline = () => {
    this.#setState("offline", "You are offline. Tokenwise reconnects when the network is back.");
  };
}

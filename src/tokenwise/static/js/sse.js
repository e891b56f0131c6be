// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, fetch() can, and
// it can send Last-Event-ID itself. Used only when the WebSocket cannot connect (see live.js).

import { SessionExpired } from "./words.js";

/** Parse a text/event-stream body, calling onMessage({id, event, data}) per message. */
export async function readEventStream(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { id: null, event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (message.data.length) onMessage({ ...message, data: message.data.join("\n") });
        message = { id: null, event: "message", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") message.data.push(text);
      else if (field === "id") message.id = text;
      else if (field === "event") message.event = text;
    }
  }
}

/**
 * Follow one run's events over SSE until its final event, starting after `afterSeq()`.
 * `session.fetch` adds the Authorization header and renews an expired token. Returns when the run has
 * ended; throws when aborted or on an error that retrying will not fix.
 */
export async function followRunOverSse(session, runId, { afterSeq, onEvent, signal, onRetry }) {
  for (let attempt = 0; ; attempt += 1) {
    let finished = false;
    try {
      const response = await session.fetch(`/api/runs/${encodeURIComponent(runId)}/stream`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(afterSeq()) },
        signal,
      });
      if (response.status === 204) return; // nothing after what we have: the run has ended
      if (!response.ok) throw Object.assign(new Error(`stream failed`), { status: response.status });
      attempt = 0;
      await readEventStream(response.body, (message) => {
        const event = JSON.parse(message.data);
        onEvent(event);
        if (event.data && event.data.final) finished = true;
      });
      if (finished) return;
    } catch (error) {
      if (signal.aborted) throw error;
      if (error.status && error.status >= 400 && error.status < 500 && error.status !== 429) throw error;
      if (error instanceof SessionExpired) throw error;
    }
    if (finished) return;
    onRetry?.(attempt);
    await pause(Math.min(10000, 500 * 2 ** attempt), signal);
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

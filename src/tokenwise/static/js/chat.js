// The signed-in screen: threads, the conversation, the composer, and the runs shown live.

import { count, h, show } from "./dom.js";
import { Live } from "./live.js";
import { RunView } from "./run_view.js";
import { Uploader } from "./upload.js";
import { SessionExpired, explain } from "./words.js";

const STATE_WORDS = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  fallback: "Connected (SSE fallback)",
};
const MAX_ORPHANS = 5000;

export class Chat {
  threadId = null;
  #views = new Map(); // run id -> RunView of the thread on screen
  #orphans = new Map(); // run id -> events that arrived before their view
  #busy = 0; // a thread is loading or a message is being submitted: hold unknown runs' events
  #pinned = true;

  /** els: the elements of #app-view; announce(text): the screen reader's live region */
  constructor(session, els, announce) {
    this.session = session;
    this.els = els;
    this.announce = announce;
    this.live = new Live(session, {
      onEvent: (event) => this.#onEvent(event),
      activeRuns: () => [...this.#views.values()].filter((v) => !v.finished).map((v) => v.runId),
      lastSeq: (runId) => this.#views.get(runId)?.lastSeq ?? 0,
    });
    this.live.addEventListener("state", () => this.#showState());
    this.live.addEventListener("problem", (event) => this.notice(event.detail));
    this.uploader = new Uploader(
      { button: els.uploadButton, input: els.fileInput, dropTarget: els.main, overlay: els.dropzone, dialog: els.uploadDialog },
      { session, onImported: (dataset) => this.#imported(dataset), focusAfter: () => els.message.focus() },
    );
    this.#listeners = [
      [els.composer, "submit", (event) => this.#send(event)],
      [els.message, "keydown", (event) => this.#enterSends(event)],
      [els.newThread, "click", () => this.navigate(null)],
      [els.threadsToggle, "click", () => this.#toggleThreads()],
      [els.noticeDismiss, "click", () => this.notice("")],
      [els.conversation, "scroll", () => this.#trackScroll()],
      [window, "popstate", () => this.route()],
    ];
    for (const [target, type, fn] of this.#listeners) target.addEventListener(type, fn);
    this.#observer = new MutationObserver(() => {
      if (this.#pinned) els.conversation.scrollTop = els.conversation.scrollHeight;
    });
    this.#observer.observe(els.conversation, { childList: true, subtree: true, characterData: true });
  }

  #listeners;
  #observer;

  start() {
    this.#showState();
    this.live.start();
    this.loadThreads();
    this.route();
  }

  stop() {
    this.live.stop();
    for (const [target, type, fn] of this.#listeners) target.removeEventListener(type, fn);
    this.#observer.disconnect();
    this.#clearConversation();
    this.els.threadList.replaceChildren();
  }

  /** An error the user should read, in plain words, until dismissed or replaced. */
  notice(text) {
    this.els.noticeText.textContent = text;
    show(this.els.notice, Boolean(text));
  }

  // ---- threads ----------------------------------------------------------------------------------

  async loadThreads() {
    try {
      const { threads } = await this.session.json("/api/threads");
      this.els.threadList.replaceChildren(
        ...threads.map((t) =>
          h("li", {}, h("a", {
            href: `/threads/${t.id}`,
            dataset: { threadId: t.id },
            "aria-current": t.id === this.threadId ? "page" : false,
            onclick: (event) => {
              event.preventDefault();
              this.navigate(t.id);
            },
          }, t.title || "Untitled thread")),
        ),
      );
      if (!threads.length) this.els.threadList.append(h("li", { class: "muted" }, "No threads yet."));
    } catch (error) {
      if (!(error instanceof SessionExpired)) this.notice(`The threads could not be loaded. ${explain(error)}`);
    }
  }

  /** Show a thread (or a new, empty one for null) and put it in the address bar. */
  navigate(threadId) {
    const path = threadId ? `/threads/${threadId}` : "/";
    if (location.pathname !== path) history.pushState({}, "", path);
    this.els.app.dataset.threadsOpen = "false";
    this.els.threadsToggle.setAttribute("aria-expanded", "false");
    this.route();
    if (!threadId) this.els.message.focus();
  }

  route() {
    const match = location.pathname.match(/^\/threads\/([\w-]+)$/);
    if (match) this.#openThread(match[1]);
    else this.#newThread();
  }

  #markCurrent() {
    for (const link of this.els.threadList.querySelectorAll("a[data-thread-id]")) {
      if (link.dataset.threadId === this.threadId) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  #newThread() {
    this.#clearConversation();
    this.threadId = null;
    this.#markCurrent();
    this.els.conversation.append(
      h("div", { class: "intro" },
        h("h2", {}, "Ask about your LLM spend"),
        h("p", {}, "For example: “How do I cut my LLM costs by 30%?” The agents work through your question step by step; you see each step live, then the report."),
        h("p", {}, "Upload your usage data first (CSV, JSONL or Parquet: drop the file here or use Upload data) to get measured figures and savings."),
      ),
    );
  }

  async #openThread(threadId) {
    this.#clearConversation();
    this.threadId = threadId;
    this.#markCurrent();
    const runs = [];
    this.#busy += 1;
    try {
      const { messages } = await this.session.json(`/api/threads/${encodeURIComponent(threadId)}/messages?limit=200`);
      if (this.threadId !== threadId) return;
      for (const message of messages) {
        if (message.role !== "user") continue;
        this.els.conversation.append(userBubble(message.content));
        if (message.run_id) runs.push(this.#viewFor(message.run_id, { quiet: true }));
      }
      const histories = await Promise.all(
        runs.map((view) => this.session.json(`/api/runs/${encodeURIComponent(view.runId)}/events?after_seq=0`).catch(() => null)),
      );
      if (this.threadId !== threadId) return;
      runs.forEach((view, i) => {
        for (const event of histories[i]?.events || []) view.apply(event);
      });
    } catch (error) {
      if (!(error instanceof SessionExpired) && this.threadId === threadId) {
        this.notice(error.code === "not_found" ? explain(error, "thread") : `This thread could not be loaded. ${explain(error)}`);
      }
      return;
    } finally {
      this.#busy -= 1;
    }
    this.#adoptOrphans();
    for (const view of runs) {
      if (view.finished) continue;
      view.quiet = false;
      view.setTraceOpen(true);
      this.live.follow(view.runId);
    }
  }

  #clearConversation() {
    this.live.unfollowAll();
    for (const view of this.#views.values()) view.dispose();
    this.#views.clear();
    this.#orphans.clear();
    this.els.conversation.replaceChildren();
    this.#pinned = true;
    this.notice("");
  }

  // ---- runs -------------------------------------------------------------------------------------

  #viewFor(runId, options = {}) {
    let view = this.#views.get(runId);
    if (view) return view;
    view = new RunView(runId, {
      offsetMs: () => this.live.serverOffsetMs,
      announce: this.announce,
      onGap: (v) => this.#fillGap(v),
      onStop: (v) => this.#stopRun(v),
    }, options);
    this.#views.set(runId, view);
    this.els.conversation.append(view.el);
    for (const event of this.#orphans.get(runId) || []) view.apply(event);
    this.#orphans.delete(runId);
    return view;
  }

  #onEvent(event) {
    const view = this.#views.get(event.run_id);
    if (view) {
      view.apply(event);
    } else if (this.#busy) {
      const list = this.#orphans.get(event.run_id) || [];
      if (list.length < MAX_ORPHANS) list.push(event);
      this.#orphans.set(event.run_id, list);
    } else if (this.threadId && event.thread_id === this.threadId) {
      this.#viewFor(event.run_id).apply(event); // a question asked in another tab
    }
  }

  #adoptOrphans() {
    for (const [runId, events] of this.#orphans) {
      if (events[0]?.thread_id === this.threadId) this.#viewFor(runId);
      else this.#orphans.delete(runId); // another thread's run: shown when that thread is opened
    }
  }

  async #fillGap(view) {
    try {
      const { events } = await this.session.json(`/api/runs/${encodeURIComponent(view.runId)}/events?after_seq=${view.lastSeq}`);
      for (const event of events) view.apply(event);
    } catch {
      // the next event that arrives asks again
    } finally {
      view.gapHandled();
    }
  }

  async #stopRun(view) {
    try {
      await this.live.cancelRun(view.runId);
    } catch (error) {
      this.notice(`The answer could not be stopped. ${explain(error)}`);
    }
  }

  // ---- composer ---------------------------------------------------------------------------------

  #enterSends(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.els.composer.requestSubmit();
    }
  }

  async #send(event) {
    event.preventDefault();
    const content = this.els.message.value.trim();
    if (!content) {
      this.els.message.focus();
      return;
    }
    const threadId = this.threadId;
    if (!threadId) this.els.conversation.querySelector(".intro")?.remove();
    const bubble = userBubble(content, true);
    this.els.conversation.append(bubble);
    this.els.message.value = "";
    this.#pinned = true;
    let ack;
    this.#busy += 1;
    try {
      ack = await this.live.submit(content, threadId);
    } catch (error) {
      bubble.remove();
      if (!this.els.message.value) this.els.message.value = content;
      if (!(error instanceof SessionExpired)) this.notice(`Your message was not sent. ${explain(error)}`);
      return;
    } finally {
      this.#busy -= 1;
    }
    bubble.dataset.pending = "false";
    if (this.threadId !== threadId) return; // the user moved to another thread meanwhile
    this.#viewFor(ack.run_id);
    if (this.live.transport === "sse") this.live.follow(ack.run_id);
    if (!threadId) {
      this.threadId = ack.thread_id;
      history.pushState({}, "", `/threads/${ack.thread_id}`);
    }
    this.#adoptOrphans();
    this.loadThreads();
  }

  #imported(dataset) {
    const parts = [`Imported ${count(dataset.row_count)} rows from ${dataset.name}`];
    if (dataset.model) parts.push(` (model ${dataset.model})`);
    const note = h("p", { class: "system-note", role: "status", dataset: { datasetId: dataset.id } }, `${parts.join("")}. Ask a question to analyse them.`);
    this.els.conversation.querySelector(".intro")?.remove();
    this.els.conversation.append(note);
    this.els.message.focus();
  }

  // ---- chrome -----------------------------------------------------------------------------------

  #showState() {
    const { state, note } = this.live;
    const el = this.els.connection;
    el.dataset.state = state;
    el.dataset.transport = this.live.transport;
    el.dataset.connections = String(this.live.connections);
    this.els.connectionText.textContent = STATE_WORDS[state] || state;
    this.els.connectionNote.textContent = state === "connected" ? "" : note;
    show(this.els.connectionNote, state !== "connected" && Boolean(note));
  }

  #toggleThreads() {
    const open = this.els.app.dataset.threadsOpen !== "true";
    this.els.app.dataset.threadsOpen = String(open);
    this.els.threadsToggle.setAttribute("aria-expanded", String(open));
  }

  #trackScroll() {
    const c = this.els.conversation;
    this.#pinned = c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }
}

function userBubble(content, pending = false) {
  return h("div", { class: "msg user", dataset: { pending: String(pending) } }, h("p", { class: "msg-label" }, "You"), h("p", { class: "msg-text" }, content));
}

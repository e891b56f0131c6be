// One run on screen: each agent as a step (status, elapsed time, thinking lines, tool calls with their
// arguments and results), the answer streaming in, then the report. Events are applied strictly in
// seq order, each once: a repeated seq is dropped, an early one waits until the gap before it is filled.
// When the report carries a direct answer, its card leads and the rest of the report sits behind a
// "Details" disclosure; a finished run's trace folds to one line ("6 steps, 9 tool calls, 0.4 s").

import { hasAnswer, renderAnswer } from "./answer.js";
import { h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { renderReportActions, renderReportExtras } from "./report.js";

const NAMES = {
  supervisor: "Supervisor",
  triage: "Triage",
  data_helper: "Data helper",
  data: "Data",
  optimization: "Optimization",
  actions: "Actions",
  reporting: "Reporting",
};
const STATUS_WORDS = { running: "working", completed: "done", failed: "failed", cancelled: "stopped" };
const OUTCOMES = {
  cancelled: "This answer was stopped before it finished.",
  internal_error: "Something went wrong on the server while answering. It has been logged; please ask again.",
  interrupted: "The server restarted while this answer was being written. Please ask again.",
};
const MAX_JSON_CHARS = 4000;

export class RunView {
  lastSeq = 0;
  finished = false;
  report = null;
  markdown = "";
  #buffer = new Map();
  #steps = new Map();
  #tools = new Map();
  #gapAsked = false;
  #renderTimer = null;
  #ticker = null;

  /** hooks: offsetMs() (server clock - local clock), announce(text), onGap(view), onStop(view) */
  constructor(runId, hooks, { quiet = false } = {}) {
    this.runId = runId;
    this.hooks = hooks;
    this.quiet = quiet;
    this.head = this.#step("supervisor");
    this.stopButton = h("button", { type: "button", class: "secondary small", onclick: () => hooks.onStop(this) }, "Stop");
    this.head.el.querySelector(".step-head").append(this.stopButton);
    this.timeline = h("ol", { class: "timeline", id: `trace-${runId}` });
    this.traceLabel = h("span", { class: "trace-label" }, "Agent steps");
    this.traceToggle = h(
      "button",
      { type: "button", class: "trace-toggle", "aria-expanded": "true", "aria-controls": this.timeline.id, onclick: () => this.setTraceOpen(!this.traceOpen) },
      this.traceLabel,
    );
    this.stepsBox = h("div", { class: "run-steps", dataset: { open: "true" } }, this.traceToggle, this.timeline);
    this.answer = h("section", { class: "answer markdown", "aria-live": "polite", "aria-busy": "true", "aria-label": "Answer" });
    this.outcome = h("p", { class: "run-outcome", role: "alert", hidden: true });
    this.el = h(
      "article",
      { class: "run", "aria-label": "Answer in progress", dataset: { runId, status: "running", lastSeq: "0" } },
      this.head.el,
      this.stepsBox,
      this.answer,
      this.outcome,
    );
    this.#ticker = setInterval(() => this.#tick(), 250);
  }

  /** Apply one event (from any transport, in any order, any number of times). */
  apply(event) {
    if (event.run_id !== this.runId || event.seq <= this.lastSeq || this.#buffer.has(event.seq)) return;
    this.#buffer.set(event.seq, event);
    while (this.#buffer.has(this.lastSeq + 1)) {
      const next = this.#buffer.get(this.lastSeq + 1);
      this.#buffer.delete(next.seq);
      this.lastSeq = next.seq;
      this.el.dataset.lastSeq = String(next.seq);
      this.#render(next);
    }
    if (this.#buffer.size && !this.#gapAsked && !this.finished) {
      this.#gapAsked = true;
      this.hooks.onGap?.(this);
    }
  }

  /** The missing events were fetched (or the fetch failed): a later gap may ask again. */
  gapHandled() {
    this.#gapAsked = false;
  }

  get traceOpen() {
    return this.traceToggle.getAttribute("aria-expanded") === "true";
  }

  /** Show or fold the trace (the agent steps and their tool calls). */
  setTraceOpen(open) {
    this.traceToggle.setAttribute("aria-expanded", String(open));
    this.stepsBox.dataset.open = String(open);
    this.timeline.hidden = !open;
  }

  dispose() {
    clearInterval(this.#ticker);
    clearTimeout(this.#renderTimer);
  }

  // ---- rendering --------------------------------------------------------------------------------

  #render(event) {
    const agent = event.agent_name;
    const data = event.data || {};
    switch (event.type) {
      case "agent_started":
        this.#started(agent, event, data);
        break;
      case "agent_thinking":
        this.#linesFor(agent).append(
          h("li", { class: "thought", dataset: { seq: event.seq, kind: event.type, agent } }, data.thought || ""),
        );
        break;
      case "tool_executing":
        this.#toolStarted(agent, event, data);
        break;
      case "tool_completed":
        this.#toolCompleted(agent, event, data);
        break;
      case "partial_result":
        this.markdown += data.delta || "";
        this.#scheduleMarkdown();
        break;
      case "agent_completed":
        if (data.final) this.#finish(event, "completed", data.result || {});
        else this.#ended(agent, event, "completed", data.result);
        break;
      case "agent_error":
        if (data.final) this.#finish(event, data.code === "cancelled" ? "cancelled" : "failed", null, data);
        else this.#ended(agent, event, data.code === "cancelled" ? "cancelled" : "failed", null, data);
        break;
      default:
        break;
    }
  }

  #step(agent) {
    const status = h("span", { class: "badge step-status" }, "waiting");
    const elapsed = h("span", { class: "step-elapsed", "aria-label": "elapsed time" });
    const head = h("div", { class: "step-head" }, h("strong", { class: "step-name" }, NAMES[agent] || agent), status, elapsed);
    const lines = h("ol", { class: "step-lines" });
    const el = h(agent === "supervisor" ? "div" : "li", { class: `step ${agent === "supervisor" ? "run-head" : ""}`, dataset: { agent, status: "waiting" } }, head);
    const step = { agent, el, status, elapsed, lines, start: null, end: null };
    if (agent !== "supervisor") el.append(lines);
    return step;
  }

  #started(agent, event, data) {
    let step = this.#steps.get(agent);
    if (!step) {
      step = agent === "supervisor" ? this.head : this.#step(agent);
      this.#steps.set(agent, step);
      if (agent !== "supervisor") this.timeline.append(step.el);
    }
    step.start = Date.parse(event.timestamp);
    step.end = null;
    step.el.dataset.seq = event.seq;
    step.el.dataset.kind = event.type;
    if (data.description && agent !== "supervisor") {
      step.el.insertBefore(h("p", { class: "step-desc" }, data.description), step.lines);
    }
    this.#setStatus(step, "running");
    if (agent !== "supervisor") this.#announce(`${NAMES[agent] || agent} started.`);
  }

  #ended(agent, event, status, result, error) {
    if (!this.#steps.has(agent)) this.#started(agent, event, {});
    const step = this.#steps.get(agent);
    step.end = Date.parse(event.timestamp);
    this.#setStatus(step, status);
    const kind = { dataset: { seq: event.seq, kind: event.type, agent } };
    if (error) {
      step.el.append(h("p", { class: "step-error", ...kind }, plainError(error)));
    } else {
      step.el.append(
        h("details", { class: "step-result", ...kind }, h("summary", {}, "Result"), h("pre", {}, json(result))),
      );
    }
    this.#tick();
    this.#announce(`${NAMES[agent] || agent} ${STATUS_WORDS[status]}.`);
  }

  #linesFor(agent) {
    if (agent === "supervisor" || !this.#steps.has(agent)) return this.timeline;
    return this.#steps.get(agent).lines;
  }

  #toolStarted(agent, event, data) {
    const status = h("span", { class: "badge tool-status" }, "running");
    const duration = h("span", { class: "tool-duration" });
    const body = h("div", { class: "tool-body" }, h("h4", {}, "Arguments"), h("pre", {}, json(data.args)));
    const el = h(
      "li",
      { class: "tool", dataset: { seq: event.seq, kind: event.type, agent, callId: data.tool_call_id, status: "running" } },
      h(
        "details",
        {},
        h("summary", {}, h("span", { class: "tool-label" }, "Tool "), h("code", { class: "tool-name" }, event.tool_name || "tool"),
          " ", status, " ", duration, h("span", { class: "tool-args-preview" }, preview(data.args))),
        body,
      ),
    );
    this.#tools.set(data.tool_call_id, { el, status, duration, body });
    this.#linesFor(agent).append(el);
  }

  #toolCompleted(agent, event, data) {
    if (!this.#tools.has(data.tool_call_id)) this.#toolStarted(agent, { ...event, type: "tool_executing" }, data);
    const tool = this.#tools.get(data.tool_call_id);
    const failed = data.result && typeof data.result === "object" && "error" in data.result && Object.keys(data.result).length === 1;
    tool.el.dataset.status = failed ? "failed" : "completed";
    tool.status.textContent = failed ? "failed" : "done";
    if (typeof data.duration_ms === "number") tool.duration.textContent = `${formatMs(data.duration_ms)}`;
    tool.body.append(
      h("div", { class: "tool-result", dataset: { seq: event.seq, kind: event.type, agent } }, h("h4", {}, "Result"), h("pre", {}, json(data.result))),
    );
  }

  #setStatus(step, status) {
    step.el.dataset.status = status;
    step.status.textContent = STATUS_WORDS[status] || status;
  }

  #scheduleMarkdown() {
    if (this.#renderTimer) return;
    this.#renderTimer = setTimeout(() => {
      this.#renderTimer = null;
      this.answer.replaceChildren(renderMarkdown(this.markdown));
    }, 50);
  }

  #finish(event, status, report, error) {
    this.finished = true;
    clearTimeout(this.#renderTimer);
    this.#renderTimer = null;
    if (this.markdown) this.answer.replaceChildren(renderMarkdown(this.markdown));
    this.answer.setAttribute("aria-busy", "false");
    this.head.end = Date.parse(event.timestamp);
    this.#setStatus(this.head, status);
    this.el.dataset.status = status;
    this.el.setAttribute("aria-label", "Answer");
    this.stopButton.hidden = true;
    const ending = status === "completed" ? "Finished: the report is below." : "Ended without a report.";
    this.timeline.append(
      h("li", { class: "run-end", dataset: { seq: event.seq, kind: event.type, agent: "supervisor" } }, ending),
    );
    this.#tick();
    clearInterval(this.#ticker);
    this.traceLabel.textContent = this.#traceSummary(status);
    if (report) {
      this.report = report;
      this.#showReport(report);
      this.#announce("The report is ready.");
    } else {
      this.outcome.textContent = OUTCOMES[error.code] || plainError(error);
      this.outcome.hidden = false;
    }
    // A failed or stopped run keeps its trace open (it says where it ended), unless it is history.
    if (status === "completed" || this.quiet) this.setTraceOpen(false);
  }

  #showReport(report) {
    let card = null;
    try {
      card = hasAnswer(report) ? renderAnswer(report.answer) : null;
    } catch (error) {
      console.error("The answer could not be drawn; showing the report as it is.", error);
    }
    if (!card) {
      this.el.append(renderReportExtras(report, this.markdown));
      return;
    }
    // The answer leads; the streamed Markdown and the figures follow, folded, with the download beside.
    this.answer.setAttribute("aria-label", "Report");
    const details = h(
      "details",
      { class: "report-details" },
      h("summary", {}, "Details"),
      this.answer,
      renderReportExtras(report, this.markdown, { actions: false }),
    );
    this.stepsBox.after(card, details, renderReportActions(report, this.markdown));
  }

  #traceSummary(status) {
    const steps = [...this.#steps.keys()].filter((agent) => agent !== "supervisor").length;
    const tools = this.#tools.size;
    const parts = [`${steps} ${steps === 1 ? "step" : "steps"}`, `${tools} ${tools === 1 ? "tool call" : "tool calls"}`];
    if (this.head.start !== null && Number.isFinite(this.head.end - this.head.start)) parts.push(formatMs(this.head.end - this.head.start));
    const ending = status === "completed" ? "" : ` (${STATUS_WORDS[status] || status})`;
    return `${parts.join(", ")}${ending}`;
  }

  #tick() {
    const now = Date.now() + this.hooks.offsetMs();
    for (const step of [this.head, ...this.#steps.values()]) {
      if (step.start === null) continue;
      step.elapsed.textContent = formatMs((step.end ?? now) - step.start);
    }
  }

  #announce(text) {
    if (!this.quiet) this.hooks.announce?.(text);
  }
}

function plainError(error) {
  return error.message || "This step failed.";
}

function json(value) {
  const text = JSON.stringify(value ?? null, null, 2);
  return text.length > MAX_JSON_CHARS ? `${text.slice(0, MAX_JSON_CHARS)}\n…` : text;
}

function preview(args) {
  const text = JSON.stringify(args ?? {});
  if (text === "{}") return "";
  return ` ${text.length > 70 ? `${text.slice(0, 69)}…` : text}`;
}

function formatMs(ms) {
  const value = Math.max(0, ms);
  if (value < 1000) return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
  const minutes = Math.floor(value / 60000);
  return `${minutes} min ${Math.round((value % 60000) / 1000)} s`;
}

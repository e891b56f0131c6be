// One titled part of a dialog that loads its own list: a heading, a body re-drawn from data, and one
// persistent message line (a live region, so a result read out once is not lost when the body re-draws).

import { h } from "./dom.js";

export class DialogSection {
  /** id: a prefix for element ids; title: the section's heading. */
  constructor(id, title, intro) {
    this.heading = h("h3", { id: `${id}-title`, tabindex: "-1" }, title);
    this.body = h("div", { class: "data-body" });
    this.message = h("p", { class: "data-message", role: "status" });
    this.el = h("section", { class: "data-section", "aria-labelledby": `${id}-title` }, this.heading, h("p", { class: "muted" }, intro), this.message, this.body);
  }

  /** Show a result (or, with isError, a problem) on the section's message line; "" clears it. */
  say(text, { isError = false } = {}) {
    this.message.className = `data-message ${text ? (isError ? "alert" : "info") : ""}`.trim();
    this.message.setAttribute("role", isError ? "alert" : "status");
    this.message.textContent = text;
  }

  /** Draw the body; then focus `focus` (an element, or a selector inside the body), if given. */
  draw(children, focus = null) {
    this.body.replaceChildren(...[children].flat().filter(Boolean));
    const target = typeof focus === "string" ? this.body.querySelector(focus) : focus;
    target?.focus();
  }
}

/** A label and its value in a <dl class="facts">; nothing when the value is missing. */
export function fact(label, value) {
  if (value === null || value === undefined || value === "") return null;
  return h("div", { class: "fact", dataset: { fact: label.toLowerCase().replace(/ /g, "-") } }, h("dt", {}, label), h("dd", {}, value));
}

/** A date and time in the reader's zone, e.g. "Dec 1, 2026, 12:06 PM". */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** A day as the data has it (UTC), e.g. "Mar 1, 2025". */
export function day(iso) {
  return iso ? new Date(iso).toLocaleDateString("en-US", { dateStyle: "medium", timeZone: "UTC" }) : "";
}

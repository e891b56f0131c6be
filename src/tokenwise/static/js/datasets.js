// The "Datasets" part of the Data dialog: each dataset the user imported, included in or left out of the
// questions, renamed, given the model of a model-less trace, or deleted (after a confirmation), all
// through /api/datasets.

import { count, h } from "./dom.js";
import { DialogSection, day, fact } from "./section.js";
import { explain } from "./words.js";

export class DatasetList extends DialogSection {
  #rows = null;
  #editing = null; // {id, kind: "rename" | "model" | "delete"}

  /** hooks: {session, announce(text)} */
  constructor(hooks) {
    super("datasets", "Datasets", "Answers read the datasets ticked “Count in answers”; untick one to leave it out (its rows stay stored). A trace without a model column needs its model named.");
    this.hooks = hooks;
  }

  /** Re-read the list (a connector's sync made or changed its dataset), keeping any form that is open. */
  async refresh() {
    if (this.#editing) return;
    await this.load();
  }

  async load() {
    this.#editing = null;
    this.say("");
    if (!this.#rows) this.draw(h("p", { class: "muted" }, "Loading your datasets…"));
    try {
      this.#rows = (await this.hooks.session.json("/api/datasets")).datasets;
      this.#draw();
    } catch (error) {
      this.#rows = null;
      this.draw(null);
      this.say(`Your datasets cannot be loaded. ${explain(error)}`, { isError: true });
    }
  }

  #draw(focus = null) {
    if (!this.#rows.length) {
      this.draw(h("p", { class: "muted" }, "No datasets yet. Upload a usage file with “Upload data” under the message box."), focus);
      return;
    }
    this.draw(h("ul", { class: "data-list" }, this.#rows.map((d) => this.#item(d))), focus);
  }

  #item(d) {
    const skipped = d.skipped_rows?.total ? `${count(d.skipped_rows.total)} duplicate ${d.skipped_rows.total === 1 ? "row" : "rows"}` : null;
    const facts = h(
      "dl",
      { class: "facts" },
      fact("Format", d.detected_format || d.source_format),
      fact("Grain", d.bucketed ? "time buckets of a report, not requests" : null),
      fact("Rows", count(d.row_count)),
      fact("Model", modelText(d)),
      fact("Period", period(d.period)),
      fact("Skipped", skipped),
    );
    const editing = this.#editing?.id === d.id ? this.#editing.kind : null;
    const tail = editing === "delete" ? this.#confirmDelete(d) : editing ? this.#form(d, editing) : this.#actions(d);
    const included = d.included !== false;
    return h(
      "li",
      { class: "data-item", dataset: { datasetId: d.id, included: String(included) } },
      h("h4", { class: "item-name" }, d.name),
      this.#includedBox(d, included),
      facts,
      tail,
    );
  }

  #includedBox(d, included) {
    const id = `dataset-included-${d.id}`;
    const box = h("input", { id, type: "checkbox", checked: included, dataset: { action: "include" }, "aria-describedby": `${id}-hint` });
    box.addEventListener("change", () => this.#include(d, box));
    return h(
      "div",
      { class: "check include-check" },
      box,
      h("label", { for: id }, "Count in answers"),
      h("span", { id: `${id}-hint`, class: "visually-hidden" }, `Whether questions cover ${d.name}`),
    );
  }

  async #include(d, box) {
    const included = box.checked;
    box.disabled = true;
    try {
      const row = await this.hooks.session.json(`/api/datasets/${encodeURIComponent(d.id)}`, { method: "PATCH", body: { included } });
      this.#rows = this.#rows.map((r) => (r.id === row.id ? row : r));
      this.#draw(`[data-dataset-id="${d.id}"] [data-action=include]`);
      const text = included ? `Answers count “${row.name}” again.` : `Answers leave out “${row.name}” from now on.`;
      this.say(text);
      this.hooks.announce(text);
    } catch (error) {
      box.checked = !included;
      box.disabled = false;
      this.say(`${included ? "Not included" : "Not left out"}. ${explain(error)}`, { isError: true });
      box.focus();
    }
  }

  #actions(d) {
    const edit = (kind) => () => this.#edit(d.id, kind);
    return h(
      "div",
      { class: "item-actions" },
      h("button", { type: "button", class: "secondary small", "aria-label": `Rename ${d.name}`, dataset: { action: "rename" }, onclick: edit("rename") }, "Rename"),
      modelLess(d) ? h("button", { type: "button", class: "secondary small", "aria-label": `Set the model of ${d.name}`, dataset: { action: "model" }, onclick: edit("model") }, d.model ? "Change model" : "Set model") : null,
      h("button", { type: "button", class: "secondary small danger", "aria-label": `Delete ${d.name}`, dataset: { action: "delete" }, onclick: edit("delete") }, "Delete"),
    );
  }

  #edit(id, kind) {
    this.#editing = { id, kind };
    this.say("");
    this.#draw(kind === "delete" ? "[data-action=keep]" : ".item-form input");
  }

  /** Back to the dataset's buttons, the focus on the one that opened the form. */
  #done(id, kind, status = "") {
    this.#editing = null;
    this.#draw(this.#rows.some((d) => d.id === id) ? `[data-dataset-id="${id}"] [data-action=${kind}]` : this.heading);
    if (status) {
      this.say(status);
      this.hooks.announce(status);
    }
  }

  #form(d, kind) {
    const rename = kind === "rename";
    const inputId = `dataset-${kind}-${d.id}`;
    const input = h("input", {
      id: inputId,
      type: "text",
      autocomplete: "off",
      maxlength: rename ? "255" : "200",
      placeholder: rename ? "" : "e.g. gpt-4o-mini",
      value: rename ? d.name : d.model || "",
      "aria-describedby": rename ? null : `${inputId}-hint`,
    });
    const form = h(
      "form",
      { class: "item-form", novalidate: true },
      h("label", { for: inputId }, rename ? "New name" : "Model of its rows"),
      input,
      rename ? null : h("p", { id: `${inputId}-hint`, class: "hint" }, "Used for the rows that name no model, priced from your price book."),
      h(
        "div",
        { class: "item-actions" },
        h("button", { type: "submit", class: "small" }, rename ? "Save name" : "Save model"),
        h("button", { type: "button", class: "secondary small", onclick: () => this.#done(d.id, kind) }, "Cancel"),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save(d, kind, input);
    });
    return form;
  }

  async #save(d, kind, input) {
    const text = input.value.trim();
    if (!text) {
      this.say(kind === "rename" ? "Give the dataset a name." : "Name the model, e.g. gpt-4o-mini.", { isError: true });
      input.focus();
      return;
    }
    const body = kind === "rename" ? { name: text } : { model: text };
    try {
      const row = await this.hooks.session.json(`/api/datasets/${encodeURIComponent(d.id)}`, { method: "PATCH", body });
      this.#rows = this.#rows.map((r) => (r.id === row.id ? row : r));
      this.#done(d.id, kind, kind === "rename" ? `Renamed to “${row.name}”.` : `The rows of “${row.name}” without a model are now ${row.model}.`);
    } catch (error) {
      this.say(`${kind === "rename" ? "Not renamed" : "The model is not set"}. ${explain(error)}`, { isError: true });
      input.focus();
    }
  }

  #confirmDelete(d) {
    return h(
      "div",
      { class: "confirm", role: "group", "aria-label": `Delete ${d.name}?` },
      h("p", {}, `Delete “${d.name}” and its ${count(d.row_count)} ${d.row_count === 1 ? "row" : "rows"}? Answers stop counting them; this cannot be undone.`),
      h(
        "div",
        { class: "item-actions" },
        h("button", { type: "button", class: "small danger-solid", onclick: () => this.#delete(d) }, "Delete for good"),
        h("button", { type: "button", class: "secondary small", dataset: { action: "keep" }, onclick: () => this.#done(d.id, "delete") }, "Keep it"),
      ),
    );
  }

  async #delete(d) {
    try {
      await this.hooks.session.json(`/api/datasets/${encodeURIComponent(d.id)}`, { method: "DELETE" });
      this.#rows = this.#rows.filter((r) => r.id !== d.id);
      this.#done(d.id, "delete", `Deleted “${d.name}”.`);
    } catch (error) {
      this.say(`Not deleted. ${explain(error)}`, { isError: true });
    }
  }
}

/** A trace with no model column: its rows get the model the user names. */
function modelLess(d) {
  return !d.mapping?.model;
}

function modelText(d) {
  if (!modelLess(d)) return d.model ? `from the column “${d.mapping.model}”, else ${d.model}` : `from the column “${d.mapping.model}”`;
  return d.model || "not named yet";
}

function period(p) {
  const start = day(p?.start);
  const end = day(p?.end);
  if (!start) return null;
  return !end || end === start ? start : `${start} – ${end}`;
}

// Upload a usage file from the chat (the "Upload data" button or drag-and-drop): preview it, show the
// detected column mapping (changeable), and import only when the user confirms.

import { count, h, show } from "./dom.js";
import { explain } from "./words.js";

const FIELDS = {
  ts: "Timestamp",
  model: "Model",
  input_tokens: "Input tokens",
  output_tokens: "Output tokens",
  cached_input_tokens: "Cached input tokens",
  latency_ms: "Latency (ms)",
  cost_usd: "Cost (USD)",
  status: "Status",
  error: "Error",
  provider: "Provider",
  feature: "Feature",
  user_tag: "User",
  request_id: "Request id",
  prompt_hash: "Prompt hash",
  prompt_text: "Prompt text",
  max_output_tokens: "Max output tokens",
};
const REQUIRED = new Set(["ts", "input_tokens", "output_tokens"]);
const SAMPLE_COLUMNS = ["ts", "model", "input_tokens", "output_tokens", "latency_ms", "cost_usd"];

export class Uploader {
  #file = null;
  #override = {};
  #preview = null;

  /** parts: {button, input, dropTarget, overlay, dialog}; hooks: {session, onImported(dataset), focusAfter} */
  constructor(parts, hooks) {
    Object.assign(this, parts);
    this.hooks = hooks;
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      const file = this.input.files[0];
      this.input.value = "";
      if (file) this.open(file);
    });
    this.dialog.addEventListener("close", () => this.hooks.focusAfter?.());
    this.#dragAndDrop();
  }

  #dragAndDrop() {
    const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
    let depth = 0;
    this.dropTarget.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      show(this.overlay);
    });
    this.dropTarget.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    this.dropTarget.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) show(this.overlay, false);
    });
    this.dropTarget.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      show(this.overlay, false);
      const file = event.dataTransfer.files[0];
      if (file) this.open(file);
    });
  }

  /** Start with a file: preview it and show the mapping. */
  async open(file) {
    this.#file = file;
    this.#override = {};
    this.#render({ busy: `Reading ${file.name}…` });
    if (!this.dialog.open) this.dialog.showModal();
    await this.#refreshPreview();
  }

  async #refreshPreview() {
    const form = new FormData();
    form.append("file", this.#file, this.#file.name);
    if (Object.keys(this.#override).length) form.append("mapping", JSON.stringify(this.#override));
    try {
      this.#preview = await this.hooks.session.json("/api/datasets/preview", { method: "POST", body: form });
      this.#render({});
    } catch (error) {
      this.#preview = null;
      this.#render({ error: `This file cannot be imported. ${explain(error)}` });
    }
  }

  async #import(model) {
    const form = new FormData();
    form.append("file", this.#file, this.#file.name);
    if (model) form.append("model", model);
    if (Object.keys(this.#override).length) form.append("mapping", JSON.stringify(this.#override));
    this.#render({ busy: `Importing ${this.#file.name}…`, model });
    try {
      const dataset = await this.hooks.session.json("/api/datasets", { method: "POST", body: form });
      this.dialog.close();
      this.hooks.onImported(dataset);
    } catch (error) {
      this.#render({ error: `The import failed. ${explain(error)}`, model });
    }
  }

  #render({ busy = "", error = "", model = "" }) {
    const p = this.#preview;
    const title = h("h2", { id: "upload-title" }, "Check the columns");
    const file = this.#file;
    const facts = h(
      "p",
      { class: "file-line" },
      h("strong", {}, file.name),
      ` · ${count(Math.ceil(file.size / 1024))} KiB`,
      p ? ` · ${p.format_title || "columns recognised by name"}` : "",
    );
    const parts = [title, facts];
    if (busy) parts.push(h("p", { class: "muted", role: "status" }, busy));
    if (error) parts.push(h("p", { class: "alert", role: "alert" }, error));
    let modelInput = null;
    if (p && !busy) {
      parts.push(this.#mappingTable(p));
      if (p.problem) parts.push(h("p", { class: "alert", role: "alert" }, `A problem in the first rows: ${p.problem}`));
      if (p.missing_fields?.length) {
        const names = p.missing_fields.map((f) => FIELDS[f] || f).join(", ");
        parts.push(h("p", { class: "alert", role: "alert" }, `Choose the column for: ${names}.`));
      }
      if (!p.mapping.model) {
        modelInput = h("input", { id: "upload-model", type: "text", placeholder: "e.g. gpt-4o", value: model, autocomplete: "off" });
        parts.push(
          h("div", { class: "field" }, h("label", { for: "upload-model" }, "Model these requests ran on"), modelInput,
            h("p", { class: "hint" }, "The file names no model; prices and savings need one.")),
        );
      }
      if (p.notes?.length) parts.push(h("ul", { class: "notes" }, p.notes.map((n) => h("li", {}, n))));
      if (p.normalized?.length) parts.push(sample(p.normalized));
    }
    const ready = p && !busy && !p.missing_fields?.length && !p.problem;
    const importButton = h("button", { type: "button", disabled: !ready, onclick: () => this.#import(modelInput?.value.trim() || "") }, "Import");
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => this.dialog.close() }, "Cancel");
    parts.push(h("div", { class: "dialog-actions" }, cancel, importButton));
    this.dialog.replaceChildren(...parts);
    if (ready) importButton.focus();
    else if (!busy) cancel.focus();
  }

  #mappingTable(p) {
    const columns = p.columns || [];
    const row = (field) => {
      const current = p.mapping[field] ?? "";
      const select = h(
        "select",
        {
          "aria-label": `Column for ${FIELDS[field]}`,
          onchange: (event) => {
            this.#override[field] = event.target.value || null;
            this.#render({ busy: "Checking the file again…" });
            this.#refreshPreview();
          },
        },
        h("option", { value: "" }, "(not in the file)"),
        columns.map((c) => h("option", { value: c, selected: c === current }, c)),
      );
      return h(
        "tr",
        { dataset: { field, column: current } },
        h("th", { scope: "row" }, FIELDS[field], REQUIRED.has(field) ? h("span", { class: "required" }, " required") : null),
        h("td", {}, select),
      );
    };
    const shown = Object.keys(FIELDS).filter((f) => REQUIRED.has(f) || p.mapping[f] || f === "model");
    const more = Object.keys(FIELDS).filter((f) => !shown.includes(f));
    return h(
      "div",
      { class: "mapping" },
      h(
        "table",
        { class: "mapping-table" },
        h("caption", {}, "Detected column mapping"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Column in your file"))),
        h("tbody", {}, shown.map(row)),
      ),
      h("details", { class: "more-fields" }, h("summary", {}, "More fields"), h("table", { class: "mapping-table" }, h("tbody", {}, more.map(row)))),
    );
  }
}

function sample(rows) {
  const columns = SAMPLE_COLUMNS.filter((c) => rows.some((r) => r[c] !== null && r[c] !== undefined));
  return h(
    "details",
    { class: "sample" },
    h("summary", {}, `First ${rows.length} rows as they will be stored`),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, FIELDS[c] || c)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, r[c] === null ? "" : String(r[c])))))),
      ),
    ),
  );
}

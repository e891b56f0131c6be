// The "Prices" settings: the price book the user's questions are priced with ($ per 1M tokens), the
// user's own prices editable (PUT /api/prices) or reset to the book's (DELETE), used from the next question.

import { h } from "./dom.js";
import { explain } from "./words.js";

const COLUMNS = [
  ["input", "Input"],
  ["cached_input", "Cached input"],
  ["output", "Output"],
];

export class PricesPanel {
  #book = null;
  #filter = "";

  /** parts: {button, dialog}; hooks: {session, announce(text)} */
  constructor(parts, hooks) {
    Object.assign(this, parts);
    this.hooks = hooks;
    this.button.addEventListener("click", () => this.open());
  }

  async open() {
    this.#render({ busy: "Loading the prices…" });
    if (!this.dialog.open) this.dialog.showModal();
    await this.#load();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  async #load(status = "") {
    try {
      this.#book = await this.hooks.session.json("/api/prices");
      this.#render({ status });
    } catch (error) {
      this.#render({ error: `The prices cannot be loaded. ${explain(error)}` });
    }
  }

  async #save(table) {
    let models;
    try {
      models = this.#changes(table);
    } catch (problem) {
      this.#showProblem(problem.message);
      problem.input?.focus();
      return;
    }
    if (!Object.keys(models).length) {
      this.#showProblem("Nothing to save: change a price first.");
      return;
    }
    try {
      this.#book = await this.hooks.session.json("/api/prices", { method: "PUT", body: { models } });
      const names = Object.keys(models);
      const text = names.length === 1 ? `Saved your price of ${names[0].toLowerCase()}. Your next question uses it.` : `Saved your prices of ${names.length} models. Your next question uses them.`;
      this.#render({ status: text, focusSave: true });
      this.hooks.announce(text);
    } catch (error) {
      this.#showProblem(`Not saved. ${explain(error)}`);
    }
  }

  async #reset(name) {
    try {
      await this.hooks.session.json(`/api/prices/${encodeURIComponent(name)}`, { method: "DELETE" });
      const text = `${name} is priced from the book again.`;
      await this.#load(text);
      this.hooks.announce(text);
    } catch (error) {
      this.#showProblem(`Not reset. ${explain(error)}`);
    }
  }

  /** The rows whose prices differ from the book shown (and a new model), as PUT /api/prices entries. */
  #changes(table) {
    const models = {};
    for (const row of table.querySelectorAll("tbody tr[data-model]")) {
      const inputs = row.querySelectorAll("input[data-field]");
      if (![...inputs].some((input) => input.value !== input.defaultValue)) continue;
      models[row.dataset.model] = entry(row.dataset.model, inputs);
    }
    const nameInput = table.querySelector("#price-new-model");
    const name = nameInput.value.trim();
    const inputs = table.querySelectorAll("tr.new-model input[data-field]");
    if (name) models[name] = entry(name, inputs);
    else if ([...inputs].some((input) => input.value !== "")) throw problem("Name the model to add.", nameInput);
    return models;
  }

  #showProblem(text) {
    const line = this.dialog.querySelector(".prices-message");
    line.className = "prices-message alert";
    line.setAttribute("role", "alert");
    line.textContent = text;
  }

  #render({ busy = "", error = "", status = "", focusSave = false }) {
    const parts = [
      h("h2", { id: "prices-title" }, "Prices"),
      h("p", { class: "muted" }, "$ per 1M tokens. Change a price to use your own (a negotiated rate, a model the book lacks); your next question uses it."),
    ];
    if (busy) parts.push(h("p", { class: "muted", role: "status" }, busy));
    if (error) parts.push(h("p", { class: "alert", role: "alert" }, error));
    const close = h("button", { type: "button", class: "secondary", onclick: () => this.close() }, "Close");
    let focus = close;
    if (this.#book && !busy) {
      const table = this.#table();
      const filter = h("input", { id: "prices-filter", type: "search", autocomplete: "off", placeholder: "e.g. gpt-4o", value: this.#filter });
      const narrow = () => {
        this.#filter = filter.value;
        const text = filter.value.trim().toLowerCase();
        for (const row of table.querySelectorAll("tbody tr[data-model]")) row.hidden = !row.dataset.model.includes(text);
      };
      filter.addEventListener("input", narrow);
      narrow();
      const save = h("button", { type: "submit" }, "Save prices");
      const message = h("p", { class: status ? "prices-message info" : "prices-message", role: "status" }, status);
      const form = h("form", { class: "prices-form", novalidate: true }, h("div", { class: "prices-wrap" }, table), message, h("div", { class: "dialog-actions" }, close, save));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.#save(table);
      });
      parts.push(h("div", { class: "field" }, h("label", { for: "prices-filter" }, "Find a model"), filter), form);
      focus = focusSave ? save : filter;
    } else {
      parts.push(h("p", { class: "prices-message", role: "status" }), h("div", { class: "dialog-actions" }, close));
    }
    this.dialog.replaceChildren(...parts);
    if (!busy) focus.focus();
  }

  #table() {
    const models = Object.entries(this.#book.models || {}).sort(([a], [b]) => a.localeCompare(b));
    const head = h("tr", {}, h("th", { scope: "col" }, "Model"), COLUMNS.map(([, label]) => h("th", { scope: "col" }, label)), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Your price")));
    const rows = models.map(([name, price]) => {
      const ours = price.origin === "user";
      return h(
        "tr",
        { dataset: { model: name, origin: ours ? "user" : "book" } },
        h("th", { scope: "row" }, name, ours ? h("span", { class: "yours" }, " yours") : null),
        COLUMNS.map(([field, label]) => h("td", {}, priceInput(field, `${label} price of ${name}`, price[field], field === "cached_input" ? "as input" : ""))),
        h("td", {}, ours ? h("button", { type: "button", class: "secondary small", "aria-label": `Reset ${name} to the book's price`, onclick: () => this.#reset(name) }, "Reset") : null),
      );
    });
    const add = h(
      "tr",
      { class: "new-model" },
      h("th", { scope: "row" }, h("input", { id: "price-new-model", type: "text", autocomplete: "off", maxlength: "100", placeholder: "Add a model", "aria-label": "Name of a model to add" })),
      COLUMNS.map(([field, label]) => h("td", {}, priceInput(field, `${label} price of the new model`, null))),
      h("td", {}),
    );
    return h("table", { class: "prices-table" }, h("caption", { class: "visually-hidden" }, "Prices in $ per 1M tokens"), h("thead", {}, head), h("tbody", {}, rows, add));
  }
}

function priceInput(field, label, value, placeholder = "") {
  const input = h("input", { type: "number", min: "0", step: "any", inputmode: "decimal", placeholder, "aria-label": label, dataset: { field } });
  input.defaultValue = value === null || value === undefined ? "" : String(value);
  return input;
}

function problem(message, input) {
  const error = new Error(message);
  error.input = input;
  return error;
}

/** One PUT entry from a row's inputs; input and output are needed, an empty cached price keeps the book's. */
function entry(name, inputs) {
  const result = {};
  for (const input of inputs) {
    const field = input.dataset.field;
    const label = COLUMNS.find(([f]) => f === field)[1].toLowerCase();
    if (input.value === "" && !input.validity.badInput) {
      if (field === "cached_input") continue;
      throw problem(`Give the ${label} price of ${name}.`, input);
    }
    const value = Number(input.value);
    if (!input.validity.valid || !Number.isFinite(value) || value < 0) {
      throw problem(`The ${label} price of ${name} must be a number of 0 or more ($ per 1M tokens).`, input);
    }
    result[field] = value;
  }
  return result;
}

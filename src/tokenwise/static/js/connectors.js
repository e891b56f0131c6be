// The "Connectors" part of the Data dialog: provider reports (OpenAI, Anthropic) pulled with an admin key,
// each with its status, last sync and last error, synced now on demand or deleted, through
// /api/connectors. The admin key is typed once into a password field, sent, and cleared: the server never
// returns it, and the page never shows it again.

import { count, h } from "./dom.js";
import { DialogSection, fact, when } from "./section.js";
import { ApiError, explain } from "./words.js";

const KINDS = [
  ["openai_usage", "OpenAI usage (tokens by model, project, API key)"],
  ["openai_costs", "OpenAI costs (the bill, by line item)"],
  ["anthropic_usage", "Anthropic usage (tokens by model, workspace)"],
  ["anthropic_costs", "Anthropic costs (the bill, by workspace)"],
];
const KIND_NAMES = { openai_usage: "OpenAI usage", openai_costs: "OpenAI costs", anthropic_usage: "Anthropic usage", anthropic_costs: "Anthropic costs" };
const STATUS = { new: "not synced yet", syncing: "syncing…", ok: "synced", error: "failed" };

export class ConnectorList extends DialogSection {
  #rows = null;
  #deleting = null; // the id of the connector whose deletion awaits a confirmation
  #syncing = new Set(); // ids with a "Sync now" in flight
  #form = null; // the "New connector" form: kept across re-draws, so a sync does not wipe what is typed

  /** hooks: {session, announce(text), changed()}: changed() after a sync or delete touched a dataset. */
  constructor(hooks) {
    super(
      "connectors",
      "Connectors",
      "Pull your organization's usage or cost report from OpenAI or Anthropic every hour with an admin key. The key is stored encrypted and never shown again.",
    );
    this.hooks = hooks;
  }

  /** The dialog closed: a key typed but not sent leaves the page. */
  forget() {
    this.#form?.reset();
    this.#deleting = null;
  }

  async load() {
    this.#deleting = null;
    this.say("");
    if (!this.#rows) this.draw(h("p", { class: "muted" }, "Loading your connectors…"));
    try {
      this.#rows = (await this.hooks.session.json("/api/connectors")).connectors;
      this.#draw();
    } catch (error) {
      this.#rows = null;
      this.draw(null);
      this.say(`Your connectors cannot be loaded. ${explain(error)}`, { isError: true });
    }
  }

  #draw(focus = null) {
    const list = this.#rows.length
      ? h("ul", { class: "data-list" }, this.#rows.map((c) => this.#item(c)))
      : h("p", { class: "muted" }, "No connectors yet.");
    this.#form ??= this.#createForm();
    this.draw([list, this.#form], focus);
  }

  #item(c) {
    const syncing = this.#syncing.has(c.id);
    const status = syncing ? "syncing" : c.status;
    const facts = h(
      "dl",
      { class: "facts" },
      fact("Kind", KIND_NAMES[c.kind] || c.kind),
      fact("Status", STATUS[status] || status),
      fact("Last sync", c.last_sync_at ? when(c.last_sync_at) : "never"),
      fact("Rows", count(c.rows_imported ?? 0)),
      fact("From", c.base_url),
    );
    const error = c.last_error && !syncing ? h("p", { class: "item-error", dataset: { fact: "last-error" } }, `Last error: ${c.last_error}`) : null;
    const tail = this.#deleting === c.id ? this.#confirmDelete(c) : this.#actions(c, syncing);
    return h("li", { class: "data-item", dataset: { connectorId: c.id, status } }, h("h4", { class: "item-name" }, c.name), facts, error, tail);
  }

  #actions(c, syncing) {
    return h(
      "div",
      { class: "item-actions" },
      h(
        "button",
        { type: "button", class: "small", "aria-label": `Sync ${c.name} now`, dataset: { action: "sync" }, disabled: syncing, onclick: () => this.#sync(c) },
        syncing ? "Syncing…" : "Sync now",
      ),
      h(
        "button",
        { type: "button", class: "secondary small danger", "aria-label": `Delete ${c.name}`, dataset: { action: "delete" }, disabled: syncing, onclick: () => this.#confirm(c.id) },
        "Delete",
      ),
    );
  }

  async #sync(c) {
    this.#syncing.add(c.id);
    this.say("");
    this.#draw();
    this.hooks.announce(`Syncing “${c.name}”…`);
    let text = "";
    let isError = false;
    try {
      const row = await this.hooks.session.json(`/api/connectors/${encodeURIComponent(c.id)}/sync`, { method: "POST" });
      this.#rows = this.#rows.map((r) => (r.id === row.id ? row : r));
      isError = row.status === "error";
      text = isError ? `The sync of “${row.name}” failed: ${row.last_error}` : `Synced “${row.name}”: ${count(row.rows_imported)} ${row.rows_imported === 1 ? "row" : "rows"}.`;
    } catch (error) {
      isError = true;
      const busy = error instanceof ApiError && error.code === "conflict";
      text = `Not synced. ${busy ? "A sync of this connector is already running; wait for it to finish." : explain(error)}`;
    } finally {
      this.#syncing.delete(c.id);
    }
    this.#draw(`[data-connector-id="${c.id}"] [data-action=sync]`);
    this.say(text, { isError });
    this.hooks.announce(text);
    if (!isError) this.hooks.changed();
  }

  /** Ask to confirm deleting `id` (or, with null, stop asking and focus the Delete button of `back`). */
  #confirm(id, back = null) {
    this.#deleting = id;
    this.say("");
    this.#draw(id ? "[data-action=keep]" : `[data-connector-id="${back}"] [data-action=delete]`);
  }

  #confirmDelete(c) {
    return h(
      "div",
      { class: "confirm", role: "group", "aria-label": `Delete ${c.name}?` },
      h("p", {}, `Delete “${c.name}”, its stored admin key and its dataset of ${count(c.rows_imported ?? 0)} rows? Answers stop counting them.`),
      h(
        "div",
        { class: "item-actions" },
        h("button", { type: "button", class: "small danger-solid", onclick: () => this.#delete(c) }, "Delete for good"),
        h("button", { type: "button", class: "secondary small", dataset: { action: "keep" }, onclick: () => this.#confirm(null, c.id) }, "Keep it"),
      ),
    );
  }

  async #delete(c) {
    try {
      await this.hooks.session.json(`/api/connectors/${encodeURIComponent(c.id)}`, { method: "DELETE" });
      this.#rows = this.#rows.filter((r) => r.id !== c.id);
      this.#deleting = null;
      this.#draw(this.heading);
      const text = `Deleted “${c.name}”.`;
      this.say(text);
      this.hooks.announce(text);
      this.hooks.changed();
    } catch (error) {
      this.say(`Not deleted. ${explain(error)}`, { isError: true });
    }
  }

  #createForm() {
    const kind = h("select", { id: "connector-kind" }, KINDS.map(([value, label]) => h("option", { value }, label)));
    const name = h("input", { id: "connector-name", type: "text", autocomplete: "off", maxlength: "100", placeholder: "e.g. OpenAI org usage" });
    const key = h("input", { id: "connector-key", type: "password", autocomplete: "off", spellcheck: "false", maxlength: "500", "aria-describedby": "connector-key-hint" });
    const base = h("input", { id: "connector-base", type: "url", autocomplete: "off", maxlength: "500", placeholder: "default: the provider's API", "aria-describedby": "connector-base-hint" });
    const form = h(
      "form",
      { class: "key-form", novalidate: true, "aria-labelledby": "connector-form-title" },
      h("h4", { id: "connector-form-title" }, "New connector"),
      h("div", { class: "field" }, h("label", { for: "connector-kind" }, "Report"), kind),
      h("div", { class: "field" }, h("label", { for: "connector-name" }, "Connector name"), name),
      h(
        "div",
        { class: "field" },
        h("label", { for: "connector-key" }, "Admin key"),
        key,
        h("p", { id: "connector-key-hint", class: "hint" }, "An organization admin key (OpenAI: sk-admin-…, Anthropic: sk-ant-admin…). Sent once; never shown again."),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "connector-base" }, "API base URL (optional)"),
        base,
        h("p", { id: "connector-base-hint", class: "hint" }, "Only for a proxy or a gateway in front of the provider."),
      ),
      h("div", { class: "item-actions" }, h("button", { type: "submit", class: "small" }, "Add connector")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#create(form, { kind, name, key, base });
    });
    return form;
  }

  async #create(form, fields) {
    const name = fields.name.value.trim();
    const adminKey = fields.key.value.trim();
    if (!name) {
      this.say("Name the connector, e.g. after the organization it reads.", { isError: true });
      fields.name.focus();
      return;
    }
    if (!adminKey) {
      this.say("Paste the organization's admin key.", { isError: true });
      fields.key.focus();
      return;
    }
    const body = { kind: fields.kind.value, name, admin_key: adminKey };
    if (fields.base.value.trim()) body.base_url = fields.base.value.trim();
    try {
      const row = await this.hooks.session.json("/api/connectors", { method: "POST", body });
      form.reset();
      this.#rows = [...this.#rows, row];
      this.#draw(`[data-connector-id="${row.id}"] [data-action=sync]`);
      const text = `Added “${row.name}”. Sync it now, or it syncs on its own within the hour.`;
      this.say(text);
      this.hooks.announce(text);
    } catch (error) {
      const field = error instanceof ApiError ? error.field : null;
      this.say(`No connector added. ${explain(error)}`, { isError: true });
      ({ name: fields.name, admin_key: fields.key, base_url: fields.base, kind: fields.kind })[field]?.focus();
    }
  }
}

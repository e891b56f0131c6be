// The "API keys" part of the Data dialog: keys for machines that send usage (an exporter, a CI job, an
// OpenTelemetry SDK). A new key's secret is shown once, with a copy button; after that only its prefix.

import { h } from "./dom.js";
import { DialogSection, fact, when } from "./section.js";
import { explain } from "./words.js";

const SCOPES = [
  ["ingest", "ingest: send usage data (uploads, events, OpenTelemetry)"],
  ["read", "read: read the datasets"],
];

export class KeyList extends DialogSection {
  #keys = null;
  #revoking = null; // the id of the key whose revocation awaits a confirmation
  #secret = null; // {id, name, secret} of the key just created, until "Done" or the dialog closes

  /** hooks: {session, announce(text)} */
  constructor(hooks) {
    super("keys", "API keys", "A machine sends a key as “Authorization: Bearer …”. Only you, signed in, can create or revoke keys.");
    this.hooks = hooks;
  }

  async load() {
    this.#revoking = null;
    this.#secret = null;
    this.say("");
    if (!this.#keys) this.draw(h("p", { class: "muted" }, "Loading your API keys…"));
    try {
      this.#keys = (await this.hooks.session.json("/api/keys")).keys;
      this.#draw();
    } catch (error) {
      this.#keys = null;
      this.draw(null);
      this.say(`Your API keys cannot be loaded. ${explain(error)}`, { isError: true });
    }
  }

  /** Drop the secret shown (the dialog closed): it is never shown again. */
  forget() {
    this.#secret = null;
    this.#revoking = null;
    if (this.#keys) this.#draw();
  }

  #draw(focus = null) {
    const list = this.#keys.length
      ? h("ul", { class: "data-list" }, this.#keys.map((k) => this.#item(k)))
      : h("p", { class: "muted" }, "No API keys yet.");
    this.draw([this.#secret ? this.#secretBox() : null, list, this.#createForm()], focus);
  }

  #item(k) {
    const facts = h(
      "dl",
      { class: "facts" },
      fact("Prefix", h("code", {}, `${k.prefix}…`)),
      fact("Scopes", k.scopes.join(", ")),
      fact("Created", when(k.created_at)),
      fact("Last used", k.last_used_at ? when(k.last_used_at) : "never"),
    );
    const tail =
      this.#revoking === k.id
        ? h(
            "div",
            { class: "confirm", role: "group", "aria-label": `Revoke ${k.name}?` },
            h("p", {}, `Revoke “${k.name}”? A machine that sends it is refused from its next request.`),
            h(
              "div",
              { class: "item-actions" },
              h("button", { type: "button", class: "small danger-solid", onclick: () => this.#revoke(k) }, "Revoke for good"),
              h("button", { type: "button", class: "secondary small", dataset: { action: "keep" }, onclick: () => this.#confirm(null, k.id) }, "Keep it"),
            ),
          )
        : h("div", { class: "item-actions" }, h("button", { type: "button", class: "secondary small danger", "aria-label": `Revoke ${k.name}`, dataset: { action: "revoke" }, onclick: () => this.#confirm(k.id) }, "Revoke"));
    return h("li", { class: "data-item", dataset: { keyId: k.id } }, h("h4", { class: "item-name" }, k.name), facts, tail);
  }

  /** Ask to confirm revoking `id` (or, with null, stop asking and focus the button of `back`). */
  #confirm(id, back = null) {
    this.#revoking = id;
    this.say("");
    this.#draw(id ? "[data-action=keep]" : `[data-key-id="${back}"] [data-action=revoke]`);
  }

  async #revoke(k) {
    try {
      await this.hooks.session.json(`/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
      this.#keys = this.#keys.filter((key) => key.id !== k.id);
      if (this.#secret?.id === k.id) this.#secret = null;
      this.#revoking = null;
      this.#draw(this.heading);
      const text = `Revoked “${k.name}”.`;
      this.say(text);
      this.hooks.announce(text);
    } catch (error) {
      this.say(`Not revoked. ${explain(error)}`, { isError: true });
    }
  }

  #createForm() {
    const name = h("input", { id: "key-name", type: "text", autocomplete: "off", maxlength: "100", placeholder: "e.g. support-bot exporter" });
    const boxes = SCOPES.map(([scope, label]) => {
      const box = h("input", { id: `key-scope-${scope}`, type: "checkbox", value: scope, checked: scope === "ingest" });
      return h("div", { class: "check" }, box, h("label", { for: `key-scope-${scope}` }, label));
    });
    const form = h(
      "form",
      { class: "key-form", novalidate: true, "aria-labelledby": "key-form-title" },
      h("h4", { id: "key-form-title" }, "New key"),
      h("div", { class: "field" }, h("label", { for: "key-name" }, "Key name"), name),
      h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"), boxes),
      h("div", { class: "item-actions" }, h("button", { type: "submit", class: "small" }, "Create key")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#create(form, name);
    });
    return form;
  }

  async #create(form, nameInput) {
    const name = nameInput.value.trim();
    const checked = [...form.querySelectorAll("input[type=checkbox]")].filter((box) => box.checked);
    if (!name) {
      this.say("Name the key, e.g. after the machine that sends it.", { isError: true });
      nameInput.focus();
      return;
    }
    if (!checked.length) {
      this.say("Choose at least one scope.", { isError: true });
      form.querySelector("input[type=checkbox]").focus();
      return;
    }
    try {
      const { secret, ...key } = await this.hooks.session.json("/api/keys", { method: "POST", body: { name, scopes: checked.map((box) => box.value) } });
      this.#keys = [...this.#keys, key];
      this.#secret = { id: key.id, name: key.name, secret };
      this.#revoking = null;
      this.#draw("#key-secret");
      const text = `Created “${key.name}”. Copy its secret now: it is not shown again.`;
      this.say(text);
      this.hooks.announce(text);
    } catch (error) {
      this.say(`No key created. ${explain(error)}`, { isError: true });
    }
  }

  #secretBox() {
    const { name, secret } = this.#secret;
    const field = h("input", { id: "key-secret", type: "text", readonly: true, class: "secret", value: secret, spellcheck: "false", "aria-describedby": "key-secret-note" });
    field.addEventListener("focus", () => field.select());
    const copied = h("p", { class: "hint", role: "status" });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = "Copied.";
      } catch {
        field.focus();
        copied.textContent = "The browser did not allow copying: the secret is selected, press Ctrl+C (⌘C on a Mac).";
      }
    };
    const done = () => {
      const id = this.#secret.id;
      this.#secret = null;
      this.say("");
      this.#draw(`[data-key-id="${id}"] [data-action=revoke]`);
    };
    return h(
      "div",
      { class: "secret-box" },
      h("label", { for: "key-secret" }, `Secret of “${name}”`),
      h("p", { id: "key-secret-note", class: "hint" }, "Shown this once. Store it where the machine reads it; Tokenwise keeps only a hash."),
      h("div", { class: "secret-row" }, field, h("button", { type: "button", class: "small", onclick: copy }, "Copy")),
      copied,
      h("div", { class: "item-actions" }, h("button", { type: "button", class: "secondary small", onclick: done }, "Done")),
    );
  }
}

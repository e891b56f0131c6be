// The "Data" dialog: the user's datasets and the API keys their machines send usage with, each part
// loading and changing its own list through the HTTP API.

import { h } from "./dom.js";
import { DatasetList } from "./datasets.js";
import { KeyList } from "./keys.js";

export class DataPanel {
  /** parts: {button, dialog}; hooks: {session, announce(text)} */
  constructor(parts, hooks) {
    Object.assign(this, parts);
    this.datasets = new DatasetList(hooks);
    this.keys = new KeyList(hooks);
    this.title = h("h2", { id: "data-title", tabindex: "-1" }, "Data");
    const close = h("button", { type: "button", class: "secondary", onclick: () => this.close() }, "Close");
    this.dialog.replaceChildren(this.title, this.datasets.el, this.keys.el, h("div", { class: "dialog-actions" }, close));
    this.button.addEventListener("click", () => this.open());
    this.dialog.addEventListener("close", () => {
      this.keys.forget();
      // Back to the button that opened it, unless the app itself is gone (signed out).
      if (!this.button.closest("[hidden]")) this.button.focus();
    });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.title.focus();
    await Promise.all([this.datasets.load(), this.keys.load()]);
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}

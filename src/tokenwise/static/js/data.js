// The "Data" dialog: the user's datasets, the connectors that pull provider reports into datasets of
// their own, and the API keys their machines send usage with, each part loading and changing its own
// list through the HTTP API.

import { h } from "./dom.js";
import { ConnectorList } from "./connectors.js";
import { DatasetList } from "./datasets.js";
import { KeyList } from "./keys.js";

export class DataPanel {
  /** parts: {button, dialog}; hooks: {session, announce(text)} */
  constructor(parts, hooks) {
    Object.assign(this, parts);
    this.datasets = new DatasetList(hooks);
    // A sync or a delete made, refreshed or removed the connector's dataset: show it.
    this.connectors = new ConnectorList({ ...hooks, changed: () => this.datasets.refresh() });
    this.keys = new KeyList(hooks);
    this.title = h("h2", { id: "data-title", tabindex: "-1" }, "Data");
    const close = h("button", { type: "button", class: "secondary", onclick: () => this.close() }, "Close");
    this.dialog.replaceChildren(this.title, this.datasets.el, this.connectors.el, this.keys.el, h("div", { class: "dialog-actions" }, close));
    this.button.addEventListener("click", () => this.open());
    this.dialog.addEventListener("close", () => {
      this.keys.forget();
      this.connectors.forget();
      // Back to the button that opened it, unless the app itself is gone (signed out).
      if (!this.button.closest("[hidden]")) this.button.focus();
    });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.title.focus();
    await Promise.all([this.datasets.load(), this.connectors.load(), this.keys.load()]);
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}

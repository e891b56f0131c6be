// The answer card that leads a finished run: the direct answer in large type, how the question was read
// and which names were not found as small notes, then the chart (a line for a series over time, bars for
// a breakdown) and the table behind it. Every number is formatted by the unit the report gives it.

import { barChart, lineChart, points } from "./charts.js";
import { h } from "./dom.js";
import { noteFor, value } from "./units.js";

const DIMENSIONS = { api_key: "API key", user: "user", feature: "feature", model: "model", team: "team", project: "project" };

/** True when `report` carries an answer worth a card (older reports have none). */
export function hasAnswer(report) {
  const answer = report && report.answer;
  return Boolean(answer && typeof answer === "object" && typeof answer.text === "string" && answer.text.trim());
}

/** The answer card for `answer` (the report's `answer` object). */
export function renderAnswer(answer) {
  const series = seriesOf(answer.series);
  const table = tableOf(answer.table);
  return h(
    "section",
    { class: "answer-card", "aria-label": "Answer", dataset: { answerable: String(answer.answerable !== false) } },
    h("p", { class: "answer-text" }, answer.text),
    notes(answer),
    !series && !table ? figures(answer.figures) : null,
    series ? seriesFigure(series) : null,
    table ? tableBlock(table) : null,
  );
}

function notes(answer) {
  const items = [];
  for (const reading of list(answer.readings)) {
    items.push(h("li", { class: "note reading" }, String(reading)));
  }
  for (const unknown of list(answer.unknown)) {
    if (!unknown || typeof unknown !== "object") continue;
    const kind = DIMENSIONS[unknown.dimension] || String(unknown.dimension || "name").replace(/_/g, " ");
    const near = list(unknown.suggestions).map(String);
    const text = `“${unknown.text}” is not a ${kind} in your data.` +
      (near.length ? ` Closest: ${near.join(", ")}.` : "");
    items.push(h("li", { class: "note unknown" }, text));
  }
  for (const missing of list(answer.missing)) {
    items.push(h("li", { class: "note missing" }, String(missing)));
  }
  return items.length ? h("ul", { class: "answer-notes", "aria-label": "Notes on this answer" }, items) : null;
}

function figures(items) {
  const rows = list(items).filter((f) => f && typeof f === "object" && f.label);
  if (!rows.length) return null;
  return h(
    "dl",
    { class: "answer-figures" },
    rows.map((f) => h("div", { class: "figure-item" }, h("dt", {}, f.label), h("dd", {}, value(f.value, f.unit ?? null)))),
  );
}

function seriesOf(series) {
  if (!series || typeof series !== "object") return null;
  const data = points(series.points);
  if (!data.length) return null;
  return { kind: series.kind === "line" ? "line" : "bar", label: String(series.label || "Chart"), unit: series.unit ?? null, data };
}

function seriesFigure(series) {
  const format = (v) => value(v, series.unit);
  const chart = series.kind === "line"
    ? lineChart(series.label, series.data, { unit: series.unit, format, width: document.documentElement.clientWidth - 48 })
    : barChart(series.label, series.data, { format });
  const note = noteFor(series.label, series.unit);
  return h(
    "figure",
    { class: "chart-figure answer-chart", dataset: { chart: "answer", kind: series.kind, points: String(series.data.length) } },
    h("figcaption", {}, series.label, note ? h("span", { class: "unit-note" }, ` (${note})`) : null),
    chart,
  );
}

function tableOf(table) {
  if (!table || typeof table !== "object") return null;
  const columns = list(table.columns).filter((c) => c && typeof c === "object");
  const rows = list(table.rows).filter(Array.isArray);
  if (!columns.length || !rows.length) return null;
  return { columns, rows, caption: table.caption || table.title || null };
}

function tableBlock(table) {
  const caption = table.caption || `The figures behind the answer (${table.rows.length} ${table.rows.length === 1 ? "row" : "rows"})`;
  const head = table.columns.map((column) => {
    const note = noteFor(column.label, column.unit);
    return h(
      "th",
      { scope: "col", class: column.unit ? "num" : false, dataset: { key: String(column.key ?? ""), unit: column.unit ?? "" } },
      String(column.label ?? column.key ?? ""),
      note ? h("span", { class: "unit-note" }, ` (${note})`) : null,
    );
  });
  const body = table.rows.map((row) =>
    h(
      "tr",
      {},
      table.columns.map((column, i) => {
        const cell = row[i];
        const numeric = typeof cell === "number";
        // Bare numbers: the header states the unit (its label, or the note beside it).
        const text = value(cell, column.unit ?? null, { bare: true });
        if (i === 0) return h("th", { scope: "row", class: numeric ? "num" : false }, text);
        return h("td", { class: numeric ? "num" : false }, text);
      }),
    ),
  );
  // The title sits outside the scrolling box, so it stays put while the columns move.
  return h(
    "div",
    { class: "answer-table-block" },
    h("p", { class: "table-title", "aria-hidden": "true" }, caption),
    h(
      "div",
      { class: "table-wrap answer-table-wrap", role: "region", "aria-label": caption, tabindex: "0" },
      h(
        "table",
        { class: "answer-table" },
        h("caption", { class: "visually-hidden" }, caption),
        h("thead", {}, h("tr", {}, head)),
        h("tbody", {}, body),
      ),
    ),
  );
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

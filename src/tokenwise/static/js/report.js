// The structured report under the streamed Markdown: the strategies with their savings, the charts
// (spend by model, savings by strategy) and a Markdown download.

import { barChart, points } from "./charts.js";
import { h, usd } from "./dom.js";

// Short names for the chart's labels; the table carries each strategy's full title.
const STRATEGY_NAMES = {
  model_routing: "Model routing",
  prompt_caching: "Prompt caching",
  response_caching: "Response caching",
  batching: "Batch API",
  output_cap: "Output caps",
  context_trimming: "Context trimming",
  retry_waste: "Retry waste",
  capacity: "Capacity",
};

/** The extras for a finished run's report; `markdown` is the streamed text, for the download. */
export function renderReportExtras(report, markdown, { actions = true } = {}) {
  const strategies = Array.isArray(report.strategies) ? report.strategies : [];
  return h(
    "section",
    { class: "report-extras", "aria-label": "Report figures" },
    strategies.length ? strategyTable(strategies) : null,
    h(
      "div",
      { class: "charts" },
      // The data's period beside monthly figures: each caption says which dollars it shows.
      chartFigure("Spend by model", spendByModel(report), periodNote(report)),
      chartFigure("Savings by strategy", savingsByStrategy(report, strategies), "$ a month"),
    ),
    actions ? renderReportActions(report, markdown) : null,
  );
}

/** The report's actions (the Markdown download). */
export function renderReportActions(report, markdown) {
  return h(
    "div",
    { class: "report-actions" },
    h("button", { type: "button", class: "secondary", onclick: () => download(report, markdown) }, "Download Markdown"),
  );
}

function spendByModel(report) {
  const fromSeries = points(report.series?.spend_by_model);
  if (fromSeries.length) return fromSeries;
  const m = report.measurements || {};
  return points(m.models || m.per_model || m.by_model || [], "model", "spend_usd");
}

function savingsByStrategy(report, strategies) {
  let data = points(report.series?.savings_by_strategy);
  if (!data.length) data = points(strategies, "type", "monthly_savings_usd");
  return data.map((p) => ({ ...p, label: STRATEGY_NAMES[p.label] || p.label }));
}

function periodNote(report) {
  const period = report.measurements?.period;
  if (!period || !period.start || !period.end) return "$, over the data's period";
  const start = String(period.start).slice(0, 10);
  const end = String(period.end).slice(0, 10);
  return start === end ? `$, on ${start}` : `$, ${start} to ${end}`;
}

function chartFigure(title, data, note) {
  const body = data.length
    ? barChart(`${title} (${note})`, data)
    : h("p", { class: "muted" }, "No figures to chart yet: they come from usage data with prices.");
  return h("figure", { class: "chart-figure", dataset: { chart: slug(title), points: String(data.length) } },
    h("figcaption", {}, title, h("span", { class: "unit-note" }, ` (${note})`)), body);
}

function strategyTable(strategies) {
  const rows = strategies.map((st) => {
    const savings = number(st.monthly_savings_usd);
    const pct = number(st.savings_pct ?? st.estimated_savings_pct);
    return h(
      "tr",
      { dataset: { strategy: st.type || "" } },
      h("th", { scope: "row" }, h("span", { class: "strategy-title" }, st.title || st.type), details(st)),
      h("td", { class: "num" }, savings === null ? "not quantified" : usd(savings)),
      h("td", { class: "num" }, pct === null ? "—" : `${pct.toFixed(pct < 10 ? 1 : 0)}%`),
      h("td", {}, st.confidence ? String(st.confidence) : "—"),
    );
  });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "strategies" },
      h("caption", {}, "Strategies and their savings"),
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, "Strategy"), h("th", { scope: "col" }, "Monthly savings"),
          h("th", { scope: "col" }, "Of spend"), h("th", { scope: "col" }, "Confidence")),
      ),
      h("tbody", {}, rows),
    ),
  );
}

function details(st) {
  const parts = [];
  if (st.how) parts.push(h("p", {}, st.how));
  const assumptions = list(st.assumptions);
  if (assumptions.length) parts.push(h("h4", {}, "Assumptions"), h("ul", {}, assumptions.map((a) => h("li", {}, a))));
  if (st.risk) parts.push(h("h4", {}, "Risk"), h("p", {}, String(st.risk)));
  const actions = Array.isArray(st.actions) ? st.actions : [];
  if (actions.length) parts.push(h("h4", {}, "How to do it"), h("ol", {}, actions.map(action)));
  if (!parts.length) return null;
  return h("details", { class: "strategy-details" }, h("summary", {}, "Details"), parts);
}

function action(item) {
  if (typeof item === "string") return h("li", {}, item);
  const text = item.detail || item.description || item.text;
  const steps = Array.isArray(item.steps) ? item.steps : [];
  const snippets = Array.isArray(item.snippets) ? item.snippets : [];
  const code = item.code || item.config;
  return h(
    "li",
    {},
    item.title ? h("strong", {}, item.title) : null,
    text ? h("p", {}, text) : null,
    steps.length ? h("ol", {}, steps.map((step) => h("li", {}, plain(step)))) : null,
    snippets.map((snippet) =>
      h("div", { class: "snippet" }, snippet.title ? h("p", { class: "snippet-title" }, snippet.title) : null,
        h("pre", {}, h("code", { class: snippet.language ? `language-${snippet.language}` : false }, plain(snippet.code ?? "")))),
    ),
    code ? h("pre", {}, h("code", {}, plain(code))) : null,
  );
}

function list(value) {
  if (!value) return [];
  if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : plain(v)));
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${plain(v)}`);
  return [String(value)];
}

function plain(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function number(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function slug(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "report";
}

function download(report, markdown) {
  const blob = new Blob([markdown], { type: "text/markdown;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: `${slug(report.title || "tokenwise-report")}.md`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

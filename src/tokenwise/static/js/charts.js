// Horizontal bar charts drawn as SVG: small, crisp at any width, readable by screen readers (a title,
// a description listing every value, and the numbers printed beside the bars).

import { s, usd } from "./dom.js";

const ROW = 28;
const LABEL_W = 150;
const VALUE_W = 76;
const WIDTH = 480;

/** Chart points [{label, value}] from the shapes a report may use; points without a number are dropped. */
export function points(series, labelKey = "label", valueKey = "value") {
  let list = [];
  if (Array.isArray(series)) {
    list = series.map((p) =>
      Array.isArray(p)
        ? { label: p[0], value: p[1] }
        : { label: p[labelKey] ?? p.label ?? p.model ?? p.type ?? p.name, value: p[valueKey] ?? p.value },
    );
  } else if (series && typeof series === "object") {
    list = Object.entries(series).map(([label, value]) => ({ label, value }));
  }
  return list
    .map((p) => ({ label: String(p.label ?? ""), value: typeof p.value === "number" ? p.value : Number.NaN }))
    .filter((p) => Number.isFinite(p.value));
}

/** An SVG bar chart of `data` ([{label, value}] in dollars), titled `title`. */
export function barChart(title, data, { format = usd } = {}) {
  const max = Math.max(...data.map((p) => p.value), 0) || 1;
  const height = data.length * ROW + 8;
  const id = `chart-${Math.random().toString(36).slice(2, 9)}`;
  const summary = data.map((p) => `${p.label}: ${format(p.value)}`).join("; ");
  const svg = s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      preserveAspectRatio: "xMinYMin meet",
    },
    s("title", { id: `${id}-title` }, title),
    s("desc", { id: `${id}-desc` }, summary),
  );
  const barSpace = WIDTH - LABEL_W - VALUE_W;
  data.forEach((p, i) => {
    const y = i * ROW + 4;
    const width = Math.max(2, (Math.max(p.value, 0) / max) * barSpace);
    const label = p.label.length > 20 ? `${p.label.slice(0, 19)}…` : p.label;
    svg.append(
      s("text", { class: "chart-label", x: LABEL_W - 8, y: y + ROW / 2, "text-anchor": "end", "dominant-baseline": "middle" }, label),
      s(
        "rect",
        {
          class: "bar",
          x: LABEL_W,
          y: y + 4,
          width: width.toFixed(1),
          height: ROW - 10,
          rx: 3,
          "data-label": p.label,
          "data-value": p.value,
        },
        s("title", {}, `${p.label}: ${format(p.value)}`),
      ),
      s("text", { class: "chart-value", x: LABEL_W + width + 6, y: y + ROW / 2, "dominant-baseline": "middle" }, format(p.value)),
    );
  });
  return svg;
}

// Charts drawn as SVG: horizontal bars for breakdowns, a line for series over time. Small, crisp at any
// width, readable by screen readers (a title, a description listing every value, the numbers printed).
// Geometry goes in SVG attributes and looks in app.css: the CSP allows no inline styles.

import { s, usd } from "./dom.js";
import { compact, unitWords } from "./units.js";

const ROW = 28;
const LABEL_W = 150;
const VALUE_W = 76;
const WIDTH = 480;
const CHAR_W = 8; // about one character of the 14px chart font, in viewBox units
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

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

/** An SVG bar chart of `data` ([{label, value}], in dollars unless `format` says otherwise), titled `title`. */
export function barChart(title, data, { format = usd } = {}) {
  // A negative value (a fall, a saving turned cost) gets a bar as long as its size, marked `negative`.
  const max = Math.max(...data.map((p) => Math.abs(p.value)), 0) || 1;
  const height = data.length * ROW + 8;
  const summary = data.map((p) => `${p.label}: ${format(p.value)}`).join("; ");
  const svg = frame("chart bar-chart", WIDTH, height, title, summary);
  const valueW = Math.max(VALUE_W, ...data.map((p) => format(p.value).length * CHAR_W + 10));
  const barSpace = WIDTH - LABEL_W - valueW;
  data.forEach((p, i) => {
    const y = i * ROW + 4;
    const width = Math.max(2, (Math.abs(p.value) / max) * barSpace);
    const label = p.label.length > 20 ? `${p.label.slice(0, 19)}…` : p.label;
    svg.append(
      s("text", { class: "chart-label", x: LABEL_W - 8, y: y + ROW / 2, "text-anchor": "end", "dominant-baseline": "middle" }, label),
      s(
        "rect",
        {
          class: p.value < 0 ? "bar negative" : "bar",
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

/**
 * An SVG line chart of `data` ([{label, value}] in order) in `unit`: a y axis with ticks in that unit and
 * its name, x labels thinned to fit, a dot (with its value as a tooltip) at each point when there is room.
 */
export function lineChart(title, data, { unit = null, format = (v) => String(v), width = 640 } = {}) {
  // Drawn at about the width it will be shown at, so its text stays readable on a phone.
  const W = Math.round(Math.min(640, Math.max(300, width)));
  const H = W < 480 ? 230 : 280;
  const pad = { left: 58, right: 26, top: 28, bottom: 46 };
  const plotW = W - pad.left - pad.right;
  const plotH = H - pad.top - pad.bottom;
  const shown = data.slice(0, 40).map((p) => `${p.label}: ${format(p.value)}`);
  const summary = shown.join("; ") + (data.length > shown.length ? `; and ${data.length - shown.length} more` : "");
  const svg = frame("chart line-chart", W, H, title, summary);
  const { ticks, low, high, step } = niceScale(data.map((p) => p.value));
  const y = (v) => pad.top + plotH - ((v - low) / (high - low)) * plotH;
  const x = (i) => pad.left + (data.length > 1 ? (i / (data.length - 1)) * plotW : plotW / 2);

  for (const tick of ticks) {
    const ty = y(tick).toFixed(1);
    svg.append(
      s("line", { class: tick === 0 ? "axis" : "grid", x1: pad.left, x2: W - pad.right, y1: ty, y2: ty }),
      s("text", { class: "tick", x: pad.left - 6, y: ty, "text-anchor": "end", "dominant-baseline": "middle" }, compact(tick, unit, step)),
    );
  }
  svg.append(s("line", { class: "axis", x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + plotH }));
  const words = unitWords(unit);
  if (words) svg.append(s("text", { class: "axis-title y-title", x: 4, y: 14 }, words));

  const labels = data.map((p) => shortLabel(p.label));
  for (const i of labelIndexes(data.length, Math.max(2, Math.floor(plotW / (Math.max(...labels.map((l) => l.length), 4) * CHAR_W + 16))))) {
    const anchor = data.length > 1 && i === data.length - 1 ? "end" : i === 0 && data.length > 1 ? "start" : "middle";
    svg.append(s("text", { class: "tick x-tick", x: x(i).toFixed(1), y: pad.top + plotH + 18, "text-anchor": anchor }, labels[i]));
  }
  const xTitle = axisName(data.map((p) => p.label));
  if (xTitle) svg.append(s("text", { class: "axis-title x-title", x: pad.left + plotW / 2, y: H - 6, "text-anchor": "middle" }, xTitle));

  const coords = data.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  svg.append(s("polyline", { class: "line", points: coords, fill: "none" }));
  if (data.length <= 62) {
    data.forEach((p, i) => {
      svg.append(
        s("circle", { class: "dot", cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 3.5, "data-label": p.label, "data-value": p.value },
          s("title", {}, `${p.label}: ${format(p.value)}`)),
      );
    });
  }
  return svg;
}

function frame(cls, width, height, title, summary) {
  const id = `chart-${Math.random().toString(36).slice(2, 9)}`;
  return s(
    "svg",
    {
      class: cls,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      preserveAspectRatio: "xMinYMin meet",
    },
    s("title", { id: `${id}-title` }, title),
    s("desc", { id: `${id}-desc` }, summary),
  );
}

/** Round tick values spanning `values` and zero: steps of 1, 2, 2.5 or 5 times a power of ten. */
export function niceScale(values, count = 4) {
  let min = Math.min(0, ...values);
  let max = Math.max(0, ...values);
  if (min === max) max = min + 1;
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) * mag;
  const low = Math.floor(min / step) * step;
  const high = Math.ceil(max / step) * step;
  const ticks = [];
  for (let t = low; t <= high + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { ticks, low, high, step };
}

/** At most `room` evenly spread indexes of `n` points, always the first and the last. */
function labelIndexes(n, room) {
  if (n <= room) return [...Array(n).keys()];
  const every = Math.ceil((n - 1) / (room - 1));
  const picked = [];
  for (let i = 0; i < n - 1; i += every) picked.push(i);
  if (picked.length > 1 && n - 1 - picked[picked.length - 1] < every) picked.pop(); // room for the last
  picked.push(n - 1);
  return picked;
}

function shortLabel(label) {
  const text = String(label);
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2}))?/.exec(text);
  if (m) return `${Number(m[3])} ${MONTHS[Number(m[2]) - 1] || m[2]}${m[4] ? ` ${m[4]}` : ""}`;
  return text.length > 14 ? `${text.slice(0, 13)}…` : text;
}

function axisName(labels) {
  if (!labels.length) return "";
  if (labels.every((l) => /^\d{4}-\d{2}-\d{2}$/.test(l))) return "Day";
  if (labels.every((l) => /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(l))) return "Hour";
  if (labels.every((l) => /^\d{4}-\d{2}$/.test(l))) return "Month";
  return "";
}

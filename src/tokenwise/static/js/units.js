// Numbers as people read them, by the unit the report gives: $1,234.56, $0.00412, 12.3%, 1,234 ms,
// "$12.30 a month". A value's unit always travels with it, so a period's dollars are never shown as if
// they were monthly ones: `value()` says the unit in full, `unitNote()` is what a column header or an
// axis says when the cells only carry the number (`value(v, unit, {bare: true})`).

const PER = {
  usd_per_month: "a month",
  usd_per_request: "per request",
  usd_per_1k_requests: "per 1k requests",
  usd_per_user: "per user",
  usd_per_feature: "per feature",
  usd_per_1m_tokens: "per 1M tokens",
};
const WORDS = {
  requests: ["request", "requests"],
  tokens: ["token", "tokens"],
  days: ["day", "days"],
};
const RATES = { requests_per_s: "requests/s", tokens_per_s: "tokens/s" };

function isUsd(unit) {
  return unit === "usd" || Object.hasOwn(PER, unit || "");
}

function grouped(n, maxFraction, minFraction = 0) {
  return n.toLocaleString("en-US", { minimumFractionDigits: minFraction, maximumFractionDigits: maxFraction });
}

/** Dollars: two decimals from $1 up, three significant digits below ($0.00412), sign before the $. */
export function money(n) {
  const abs = Math.abs(n);
  let text;
  if (abs === 0) text = "0.00";
  else if (abs >= 1) text = grouped(abs, 2, 2);
  else text = abs.toLocaleString("en-US", { maximumSignificantDigits: 3, minimumSignificantDigits: 2 });
  return `${n < 0 ? "-" : ""}$${text}`;
}

/** A plain quantity: whole numbers grouped, fractions with as many decimals as they need (at most 2). */
export function quantity(n) {
  const abs = Math.abs(n);
  if (Number.isInteger(n) || abs >= 100) return grouped(n, 0);
  if (abs >= 10) return grouped(n, 1);
  if (abs >= 0.01 || abs === 0) return grouped(n, 2);
  return n.toLocaleString("en-US", { maximumSignificantDigits: 2 });
}

/** `n` in `unit`, unit said in full ("$12.30 a month", "1,234 requests"); `bare` leaves the unit to a header. */
export function value(n, unit, { bare = false } = {}) {
  if (n === null || n === undefined || n === "") return "—";
  if (typeof n !== "number") return String(n);
  if (!Number.isFinite(n)) return "—";
  if (isUsd(unit)) return bare || !PER[unit] ? money(n) : `${money(n)} ${PER[unit]}`;
  switch (unit) {
    case "pct": {
      const abs = Math.abs(n);
      const digits = abs === 0 || abs >= 100 ? 0 : abs >= 0.1 ? 1 : 2;
      return `${grouped(n, digits)}%`;
    }
    case "ms":
      return `${grouped(n, Math.abs(n) >= 10 ? 0 : 1)}${bare ? "" : " ms"}`;
    case "requests_per_s":
    case "tokens_per_s":
      return `${grouped(n, Math.abs(n) >= 100 ? 0 : 1)}${bare ? "" : ` ${RATES[unit]}`}`;
    default: {
      const words = WORDS[unit];
      if (!words || bare) return quantity(n);
      return `${quantity(n)} ${n === 1 ? words[0] : words[1]}`;
    }
  }
}

/** What a header or an axis says about the unit of numbers shown bare: "$", "$ a month", "ms", "%". */
export function unitNote(unit) {
  if (isUsd(unit)) return PER[unit] ? `$ ${PER[unit]}` : "$";
  if (unit === "pct") return "%";
  if (unit === "ms") return "ms";
  if (RATES[unit]) return RATES[unit];
  if (WORDS[unit]) return WORDS[unit][1];
  return "";
}

/** The unit note a label still needs: none when the label already says it ("Latency (ms)", "Requests"). */
export function noteFor(label, unit) {
  const note = unitNote(unit);
  if (!note) return "";
  const text = String(label || "").toLowerCase();
  if (note === "$") return /\$|usd|dollar/.test(text) ? "" : note;
  if (note === "%") return /%|percent|share/.test(text) ? "" : note;
  if (isUsd(unit)) return text.includes(PER[unit]) && /\$|usd|dollar/.test(text) ? "" : note;
  return text.includes(note) ? "" : note;
}

/** A short form for chart axes: $1.2k, $0.05, 12%, 3.4M; with `step`, every tick has the step's decimals. */
export function compact(n, unit, step = null) {
  const abs = Math.abs(n);
  let short;
  if (abs >= 1000) short = n.toLocaleString("en-US", { notation: "compact", maximumSignificantDigits: 3 });
  else if (step) short = grouped(n, decimals(step), decimals(step));
  else if (abs >= 1 || abs === 0) short = grouped(n, abs >= 10 ? 0 : 1);
  else short = n.toLocaleString("en-US", { maximumSignificantDigits: 2 });
  if (isUsd(unit)) return n < 0 ? `-$${short.slice(1)}` : `$${short}`;
  if (unit === "pct") return `${short}%`;
  return short;
}

function decimals(step) {
  const text = String(Number(step.toPrecision(6)));
  return text.includes("e-") ? Number(text.split("e-")[1]) : (text.split(".")[1] || "").length;
}

/** True for the units whose numbers are dollars of any kind. */
export function isMoney(unit) {
  return isUsd(unit);
}

/** The unit in words, for an axis title: "US dollars a month", "milliseconds", "requests". */
export function unitWords(unit) {
  if (isUsd(unit)) return PER[unit] ? `US dollars ${PER[unit]}` : "US dollars";
  if (unit === "pct") return "percent";
  if (unit === "ms") return "milliseconds";
  if (RATES[unit]) return RATES[unit];
  if (WORDS[unit]) return WORDS[unit][1];
  return "";
}

// Errors in plain words. Nothing here ever shows a status number or a close code to the user.

export const SESSION_EXPIRED = "Your session has expired. Please sign in again.";

/** An HTTP error with the server's `{"error": {"code", "message", ...}}` body. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "http_error";
    this.field = error.field ?? null;
    this.details = error;
  }
}

/** The network itself failed (server down, offline). */
export class NetworkError extends Error {}

/** The session cannot be renewed: the user must sign in again. */
export class SessionExpired extends Error {
  constructor() {
    super(SESSION_EXPIRED);
  }
}

/** What to tell the user about a failed request. */
export function explain(error, context = "") {
  if (error instanceof SessionExpired) return SESSION_EXPIRED;
  if (error instanceof NetworkError) return "The server cannot be reached. Check your connection and try again.";
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.code) {
    case "invalid_credentials":
      return "That email and password do not match an account.";
    case "conflict":
      return context === "signup"
        ? "An account with this email already exists. Sign in instead."
        : "That has already happened; refresh the page to see the current state.";
    case "too_large":
      return `This file is larger than the ${size(error.details.limit_bytes)} the server accepts.`;
    case "rate_limited":
      return "Too many requests at once. Wait a moment and try again.";
    case "service_unavailable":
      return "The service is busy or restarting. Try again in a few seconds.";
    case "not_found":
      return context === "thread" ? "This thread does not exist or is not yours." : "That was not found.";
    case "unauthenticated":
    case "token_expired":
      return SESSION_EXPIRED;
    case "invalid_input":
    case "invalid_json":
      if (context === "signup" || context === "signin") {
        if (error.field === "email") return "Enter a valid email address.";
        if (error.field === "password") return "Use a password of at least 8 characters.";
      }
      return sentence(error.message);
    case "internal_error":
      return "Something went wrong on the server. It has been logged; please try again.";
    default:
      return sentence(error.message);
  }
}

/** What a WebSocket close means for the user, and what the app does about it. */
export function closeMeaning(code) {
  switch (code) {
    case 4401:
      return { action: "reauth", text: "" };
    case 4403:
      return { action: "fallback", text: "This address may not open a live connection; using plain HTTP instead." };
    case 4429:
      return { action: "slow", text: "Too many Tokenwise tabs are open. Close some and this one reconnects." };
    case 1009:
      return { action: "retry", text: "That message was too large to send." };
    case 1012:
      return { action: "retry", text: "The server is restarting; reconnecting." };
    case 1013:
      return { action: "slow", text: "The service is busy; reconnecting shortly." };
    default:
      return { action: "retry", text: "" };
  }
}

function size(bytes) {
  if (!bytes) return "size";
  const mib = bytes / (1024 * 1024);
  return mib >= 1 ? `${Math.round(mib)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

function sentence(text) {
  const t = String(text || "Something went wrong.").trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

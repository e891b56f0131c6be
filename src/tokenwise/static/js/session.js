// The signed-in session. The access token lives only in memory; the refresh token in sessionStorage
// (this tab only, gone when the tab closes) so that a reload keeps the user signed in. Tokens are
// renewed in the background before they expire; listeners hear "token" (a new access token) and
// "expired" (the session cannot be renewed: sign in again).

import { ApiError, NetworkError, SessionExpired } from "./words.js";

const REFRESH_KEY = "tokenwise.refresh_token";
const RENEW_AT = 0.75; // renew when this share of the access token's life has passed
const RETRY_MS = 5000; // after a network failure while renewing

async function request(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal, cache: "no-store" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new NetworkError(String(error));
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status alone says what happened
  }
  return new ApiError(response.status, body);
}

export class Session extends EventTarget {
  user = null;
  accessToken = null;
  expiresAt = 0;
  refreshes = 0;
  #timer = null;
  #renewing = null;

  get signedIn() {
    return this.accessToken !== null;
  }

  get hasStoredSession() {
    return sessionStorage.getItem(REFRESH_KEY) !== null;
  }

  /** Sign back in from the stored refresh token (after a reload). Throws SessionExpired if it is dead. */
  async restore() {
    await this.refresh();
  }

  async signIn(email, password) {
    const response = await request("/auth/login", { method: "POST", body: { email, password } });
    if (!response.ok) throw await failure(response);
    this.#accept(await response.json());
  }

  async signUp(email, password) {
    const response = await request("/auth/register", { method: "POST", body: { email, password } });
    if (!response.ok) throw await failure(response);
    await this.signIn(email, password);
  }

  /** Sign out here and revoke the refresh token on the server (best effort). */
  async signOut() {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    this.#clear();
    if (refreshToken) {
      try {
        await request("/auth/logout", { method: "POST", body: { refresh_token: refreshToken } });
      } catch {
        // offline: the token expires on its own
      }
    }
  }

  /** A new access token from the refresh token; one renewal at a time. */
  refresh() {
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = null;
    });
    return this.#renewing;
  }

  async #renew() {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    if (!refreshToken) throw this.#expire();
    const response = await request("/auth/refresh", { method: "POST", body: { refresh_token: refreshToken } });
    if (response.status === 401 || response.status === 422) throw this.#expire();
    if (!response.ok) throw await failure(response);
    this.refreshes += 1;
    this.#accept(await response.json());
  }

  /** fetch() with the access token; a 401 renews the token once and tries again. */
  async fetch(path, options = {}) {
    for (let attempt = 0; ; attempt += 1) {
      if (!this.signedIn) throw new SessionExpired();
      const headers = { ...(options.headers || {}), Authorization: `Bearer ${this.accessToken}` };
      const response = await request(path, { ...options, headers });
      if (response.status !== 401) return response;
      if (attempt > 0) throw this.#expire();
      await this.refresh();
    }
  }

  /** fetch() that returns the JSON body, or throws ApiError / NetworkError / SessionExpired. */
  async json(path, options = {}) {
    const response = await this.fetch(path, options);
    if (!response.ok) throw await failure(response);
    return response.status === 204 ? null : response.json();
  }

  #accept(pair) {
    // The token's times are whole seconds, so it may have up to a second less to live than expires_in.
    const lifeMs = Math.max(1, pair.expires_in - 1) * 1000;
    this.user = pair.user;
    this.accessToken = pair.access_token;
    this.expiresAt = Date.now() + lifeMs;
    sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
    this.#schedule(lifeMs * RENEW_AT);
    this.dispatchEvent(new Event("token"));
  }

  #schedule(delayMs) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#background(), Math.max(500, delayMs));
  }

  async #background() {
    try {
      await this.refresh();
    } catch (error) {
      // A network failure: try again while the current token still has time; an expiry has already
      // been announced by #expire.
      if (!(error instanceof SessionExpired) && this.signedIn) this.#schedule(RETRY_MS);
    }
  }

  #clear() {
    clearTimeout(this.#timer);
    this.user = null;
    this.accessToken = null;
    this.expiresAt = 0;
    sessionStorage.removeItem(REFRESH_KEY);
  }

  #expire() {
    const wasSignedIn = this.signedIn || this.hasStoredSession;
    this.#clear();
    if (wasSignedIn) this.dispatchEvent(new Event("expired"));
    return new SessionExpired();
  }
}

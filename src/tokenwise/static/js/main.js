// Start-up: restore the session (a reload keeps the user signed in), show the sign-in or the app.

import { $, show } from "./dom.js";
import { Chat } from "./chat.js";
import { DataPanel } from "./data.js";
import { PricesPanel } from "./prices.js";
import { Session } from "./session.js";
import { NetworkError, SESSION_EXPIRED, explain } from "./words.js";

const session = new Session();
let chat = null;

const els = {
  app: $("#app-view"),
  main: $("#main"),
  conversation: $("#conversation"),
  composer: $("#composer"),
  message: $("#message"),
  send: $("#send"),
  uploadButton: $("#upload-button"),
  fileInput: $("#file-input"),
  dropzone: $("#dropzone"),
  uploadDialog: $("#upload-dialog"),
  newThread: $("#new-thread"),
  threadList: $("#thread-list"),
  threadsToggle: $("#threads-toggle"),
  connection: $("#connection"),
  connectionText: $("#connection-text"),
  connectionNote: $("#connection-note"),
  notice: $("#notice"),
  noticeText: $("#notice-text"),
  noticeDismiss: $("#notice-dismiss"),
};
const auth = {
  view: $("#signin-view"),
  form: $("#auth-form"),
  email: $("#email"),
  password: $("#password"),
  signIn: $("#signin"),
  signUp: $("#signup"),
  message: $("#auth-message"),
};
const announcer = $("#announcer");

function announce(text) {
  announcer.textContent = text;
}

const prices = new PricesPanel({ button: $("#prices-button"), dialog: $("#prices-dialog") }, { session, announce });
const data = new DataPanel({ button: $("#data-button"), dialog: $("#data-dialog") }, { session, announce });

function showSignIn(message = "", { isError = true } = {}) {
  chat?.stop();
  chat = null;
  if (els.uploadDialog.open) els.uploadDialog.close();
  prices.close();
  data.close();
  document.body.dataset.view = "signin";
  show(els.app, false);
  show(auth.view, true);
  auth.message.textContent = message;
  auth.message.className = isError ? "alert" : "info";
  auth.message.setAttribute("role", isError ? "alert" : "status");
  show(auth.message, Boolean(message));
  auth.password.value = "";
  auth.email.focus();
}

function showApp() {
  document.body.dataset.view = "app";
  show(auth.view, false);
  show(els.app, true);
  $("#user-email").textContent = session.user?.email || "";
  chat = new Chat(session, els, announce);
  chat.start();
  els.message.focus();
}

async function authenticate(kind) {
  const email = auth.email.value.trim();
  const password = auth.password.value;
  if (!email || !password) {
    showAuthError(!email ? "Enter your email address." : "Enter your password.");
    (!email ? auth.email : auth.password).focus();
    return;
  }
  if (kind === "signup" && password.length < 8) {
    showAuthError("Use a password of at least 8 characters.");
    auth.password.focus();
    return;
  }
  setAuthBusy(true);
  try {
    if (kind === "signup") await session.signUp(email, password);
    else await session.signIn(email, password);
    showApp();
  } catch (error) {
    showAuthError(explain(error, kind));
  } finally {
    setAuthBusy(false);
  }
}

function showAuthError(text) {
  auth.message.textContent = text;
  auth.message.className = "alert";
  auth.message.setAttribute("role", "alert");
  show(auth.message, true);
}

function setAuthBusy(busy) {
  auth.signIn.disabled = busy;
  auth.signUp.disabled = busy;
  auth.form.setAttribute("aria-busy", String(busy));
}

auth.form.addEventListener("submit", (event) => {
  event.preventDefault();
  authenticate("signin");
});
auth.signUp.addEventListener("click", () => authenticate("signup"));

$("#signout").addEventListener("click", async () => {
  chat?.stop();
  chat = null;
  await session.signOut();
  history.replaceState({}, "", "/");
  showSignIn("You have signed out.", { isError: false });
});

session.addEventListener("expired", () => showSignIn(SESSION_EXPIRED));
session.addEventListener("token", () => {
  document.body.dataset.tokenRefreshes = String(session.refreshes);
});

async function boot() {
  if (!session.hasStoredSession) {
    showSignIn();
    return;
  }
  try {
    await session.restore();
    showApp();
  } catch (error) {
    // An expired session has already asked for a sign-in (the "expired" event).
    if (error instanceof NetworkError) showSignIn(explain(error));
    else if (document.body.dataset.view !== "signin") showSignIn(explain(error));
  }
}

boot();

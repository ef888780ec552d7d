// The password-reset page: redeem the link's token (kept in the URL fragment,
// which browsers never send to a server), or ask for a link by email.

const CONFIRM_URL = "/api/v1/auth/password-reset/confirm";
const REQUEST_URL = "/api/v1/auth/password-reset";
const MIN_PASSWORD_CHARS = 8;

const $ = (id) => document.getElementById(id);

function showStatus(text) {
  const status = $("reset-status");
  status.textContent = text;
  status.hidden = false;
}

function fieldError(id, text) {
  $(id).textContent = text || "";
}

async function post(url, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  let problem = null;
  if (!res.ok) {
    try { problem = await res.json(); } catch { problem = null; }
  }
  return { status: res.status, problem };
}

function problemFor(problem, field) {
  const found = (problem && problem.errors || []).find((e) => e.field === field);
  return found ? found.message : "";
}

function startRedeem(token) {
  // Out of the address bar and the history: the link works once anyway.
  history.replaceState(null, "", location.pathname);
  const form = $("reset-form");
  form.hidden = false;
  $("reset-password").focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = $("reset-password").value;
    const again = $("reset-again").value;
    fieldError("reset-password-error", "");
    fieldError("reset-again-error", "");
    if (password.length < MIN_PASSWORD_CHARS) {
      fieldError("reset-password-error", `At least ${MIN_PASSWORD_CHARS} characters.`);
      return;
    }
    if (password !== again) {
      fieldError("reset-again-error", "The two passwords differ.");
      return;
    }
    const { status, problem } = await post(CONFIRM_URL, { token, password });
    if (status === 204) {
      form.hidden = true;
      $("reset-title").textContent = "Password changed";
      $("reset-lead").textContent = "Every session of your account has ended. Log in with your new password.";
      return;
    }
    const weak = problemFor(problem, "password");
    if (weak) {
      fieldError("reset-password-error", `This password ${weak}`);
      return;
    }
    form.hidden = true;
    showStatus(problemFor(problem, "token")
      ? "This reset link is unknown, used or expired. Ask for a new one."
      : "Something went wrong; try again in a moment.");
  });
}

function startRequest() {
  const byEmail = document.querySelector("main").dataset.byEmail === "yes";
  $("reset-title").textContent = "Forgot your password?";
  if (!byEmail) {
    $("reset-lead").textContent = "Ask the person who runs this WhatsEase server for a reset link.";
    return;
  }
  $("reset-lead").textContent = "We will mail a one-time link to your account's email.";
  const form = $("request-form");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fieldError("request-email-error", "");
    const email = $("request-email").value.trim();
    const { status, problem } = await post(REQUEST_URL, { email });
    if (status === 202) {
      form.hidden = true;
      showStatus("If an account has this email, a reset link is on its way. Check your inbox.");
    } else if (status === 429) {
      showStatus("Too many requests; try again in a few minutes.");
    } else {
      fieldError("request-email-error", problemFor(problem, "email") || "Check the address.");
    }
  });
}

const token = location.hash.replace(/^#/, "");
if (token) startRedeem(token); else startRequest();

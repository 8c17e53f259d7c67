// Sign-in: paste an API token. The console keeps it in sessionStorage (this tab only) and
// checks it with one API call before using it.

import { call, decodeClaims, session } from "./api.js";
import { announce, h, pageTitle } from "./ui.js";

export function renderSignIn(main, done) {
  const error = h("p", { class: "field-error", id: "token-error" });
  const input = h("textarea", {
    id: "token",
    name: "token",
    class: "token",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "token-hint token-error",
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "panel signin", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "token" }, "API token"),
      input,
      h("p", { class: "hint", id: "token-hint" },
        "A bearer token for the Ferry API. ", h("code", {}, "ferry dev"),
        " prints an admin token; ",
        h("code", {}, "ferry token create --tenant T --role viewer|operator|admin|service-operator"),
        " mints others. The token is kept in this browser tab only, until you sign out or close it."),
      error),
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    const fail = (message) => {
      error.textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    };
    if (!token) return fail("Paste a token.");
    const claims = decodeClaims(token);
    if (!claims) return fail("This is not a token: a token has three dot-separated parts.");
    if (claims.exp && claims.exp * 1000 < Date.now()) {
      return fail(`This token expired on ${new Date(claims.exp * 1000).toISOString()}; mint a new one.`);
    }
    submit.disabled = true;
    try {
      // Any read proves the token: the API authenticates before anything else.
      await call("GET", "/v1/clusters?pageSize=1", undefined, token);
      session.signIn(token);
      announce("Signed in");
      done();
    } catch (err) {
      fail(err.status === 401 ? `The API refused this token: ${err.message}` : err.message);
    } finally {
      submit.disabled = false;
    }
  });

  main.append(
    pageTitle("Sign in to Ferry"),
    h("p", { class: "muted" }, "The console uses the same REST API and token as every other client."),
    form);
}

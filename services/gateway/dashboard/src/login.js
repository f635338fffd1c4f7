// The login page: username, password and a TOTP code (every role but viewer needs one).

import { login } from "./api.js";
import { h, replace } from "./dom.js";

export function loginPage(root, onLoggedIn) {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, maxlength: 64 });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 256 });
  const totp = h("input", {
    id: "totp",
    name: "totp",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    pattern: "[0-9]{6}",
    maxlength: 6,
    "aria-describedby": "totp-help",
  });
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    {
      class: "login",
      "aria-labelledby": "login-title",
      onsubmit: async (event) => {
        event.preventDefault();
        replace(error);
        submit.disabled = true;
        try {
          const me = await login(username.value.trim(), password.value, totp.value.trim());
          password.value = "";
          onLoggedIn(me);
        } catch (e) {
          replace(error, e.message || "login failed");
          password.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", { id: "login-title" }, "Trading platform"),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("label", { for: "totp" }, "TOTP code"),
    totp,
    h("p", { class: "muted", id: "totp-help" }, "6 digits from your authenticator app; viewers may leave it empty."),
    error,
    submit,
  );
  replace(root, h("main", { class: "login-page" }, form));
  username.focus();
}

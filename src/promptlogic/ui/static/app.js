// Small progressive enhancement shared by every page (no framework, no build step).
"use strict";

/** The page's CSRF token, for the scripts' own POSTs (sent as X-CSRF-Token). */
export function csrfToken() {
  const field = document.querySelector('input[name="csrf_token"]');
  return field ? field.value : "";
}

document.addEventListener("DOMContentLoaded", () => {
  // A select marked data-autosubmit submits its form on change (the button stays for no-JS).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // Forms marked data-confirm ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Buttons that open a <dialog> named by data-opens.
  for (const button of document.querySelectorAll("[data-opens]")) {
    button.addEventListener("click", () => document.getElementById(button.dataset.opens).showModal());
  }
  for (const button of document.querySelectorAll("[data-closes]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
});

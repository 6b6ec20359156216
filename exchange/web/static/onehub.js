// OneHub pages: the little the server cannot do. Everything works without it except printing
// from a button (the browser's own Print does the same).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // After a check, take keyboard and screen-reader users to the answer.
  const answer = document.getElementById("result") || document.getElementById("consents");
  const alert = document.querySelector("[role=alert]");
  const target = alert || answer;
  if (target && document.querySelector("main form")) {
    target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: false });
  }
});

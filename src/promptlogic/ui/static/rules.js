// The rule form's character count, kept up to date as the author types (the page works without it).
"use strict";

function track(textarea) {
  const counter = document.getElementById(`${textarea.id}-count`);
  const max = Number(textarea.dataset.maxChars);
  if (!counter || !max) return;
  counter.classList.add("char-count");
  const update = () => {
    // The server strips surrounding whitespace and counts line breaks as one character each.
    const length = textarea.value.replace(/\r\n/g, "\n").trim().length;
    counter.textContent = `${length} of ${max} characters`;
    counter.classList.toggle("over", length > max);
  };
  textarea.addEventListener("input", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const textarea of document.querySelectorAll("textarea[data-max-chars]")) track(textarea);
});

// An eval's page while it runs: poll its progress, and reload once it has ended (the page
// shows the summary and results then). Without JavaScript a <noscript> refresh does this.
"use strict";

const EVERY_MS = 2000;

function follow(box) {
  const url = box.dataset.poll;
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-progress-text]");
  const tick = async () => {
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (answer.ok) {
        const progress = await answer.json();
        if (progress.finished) {
          window.location.reload();
          return;
        }
        bar.max = progress.total;
        bar.value = progress.completed;
        bar.textContent = `${progress.completed} of ${progress.total}`;
        text.textContent = `${progress.completed} of ${progress.total} case runs · ${progress.status}`;
      }
    } catch {
      // A network blip: try again on the next tick.
    }
    window.setTimeout(tick, EVERY_MS);
  };
  window.setTimeout(tick, EVERY_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("[data-poll]")) follow(box);
});

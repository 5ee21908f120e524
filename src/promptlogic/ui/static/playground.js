// The playground: the variables form, running the prompt (JSON or a Server-Sent Events
// stream read from fetch), and showing the output, usage, cost and the run's record.
"use strict";

import { csrfToken } from "./app.js";
import {
  buildForm, formProblems, hasExtraValues, readForm, showErrors,
} from "./schema_form.js";

const $ = (id) => document.getElementById(id);

function parseData(element, name, fallback) {
  try {
    return JSON.parse(element.dataset[name]);
  } catch (error) {
    return fallback;
  }
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function costText(cost) {
  if (cost === null || cost === undefined) return "unknown (no price for this model)";
  if (cost === 0) return "$0";
  return `$${Number(cost).toFixed(10).replace(/0+$/, "").replace(/\.$/, "")}`;
}

function showError(message, fields = []) {
  const box = $("run-error");
  box.replaceChildren();
  box.append(document.createTextNode(message));
  if (fields.length > 0) {
    const list = document.createElement("ul");
    for (const field of fields) {
      const item = document.createElement("li");
      item.textContent = `${field.field}: ${field.message}`;
      list.append(item);
    }
    box.append(list);
  }
  box.hidden = false;
}

function clearError() {
  $("run-error").hidden = true;
  $("run-error").replaceChildren();
}

function startResult() {
  $("result").hidden = false;
  $("output").textContent = "";
  $("parsed-block").hidden = true;
  $("result-facts").hidden = true;
}

/** The final answer of a run (the JSON answer, or the stream's `done` event). */
function showResult(result) {
  $("output").textContent = result.output ?? "";
  if (result.parsed !== null && result.parsed !== undefined) {
    $("parsed").textContent = pretty(result.parsed);
    $("parsed-block").hidden = false;
  }
  showRunLink(result.id, result.status + (result.repaired ? " (repaired)" : ""));
  const usage = result.usage || {};
  $("tokens").textContent = `${usage.input_tokens ?? "—"} / ${usage.output_tokens ?? "—"}`;
  $("cost").textContent = costText(result.cost);
  $("latency").textContent = `${result.latency_ms} ms`;
  $("result-provider").textContent = result.provider ?? "—";
  $("result-model").textContent = result.model ?? "—";
  const used = (result.versions_used || []).map((u) => `${u.prompt} v${u.version}`).join(", ");
  $("result-version").textContent =
    `v${result.version}` + (result.label ? ` (label ${result.label})` : "") +
    (used ? ` · uses ${used}` : "");
  $("result-facts").hidden = false;
}

function showRunLink(id, state) {
  if (!id) return;
  const link = $("run-link");
  link.href = `/ui/runs/${encodeURIComponent(id)}`;
  link.textContent = id;
  $("run-state").textContent = state ? `(${state})` : "";
  $("result-facts").hidden = false;
}

/** A problem+json answer, shown inline: the fields next to their inputs where possible. */
async function showProblem(response, container) {
  let problem = {};
  try {
    problem = await response.json();
  } catch (error) {
    problem = { detail: `The server answered ${response.status}.` };
  }
  const left = showErrors(container, problem.errors || []);
  const prefix = {
    422: "The variables are not valid.",
    429: "A usage limit stops this run.",
    502: "The provider's answer cannot be used.",
    503: "The run cannot be done right now.",
    504: "The provider took too long.",
  }[response.status];
  const retry = response.headers.get("Retry-After");
  const placed = (problem.errors || []).length > 0 && left.length === 0;
  const detail = placed ? "See the fields marked." : problem.detail || response.statusText;
  let message = prefix ? `${prefix} ${detail}` : detail;
  if (retry) message += ` Try again in ${retry} s.`;
  showError(message, left);
  const runId = response.headers.get("X-Promptlogic-Run-Id");
  if (runId) {
    $("result").hidden = false;
    $("output").textContent = "";
    showRunLink(runId, "failed");
  }
}

/** Server-Sent Events from a fetch body: calls `onEvent(name, data)` for each event. */
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let name = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length > 0) onEvent(name, JSON.parse(data.join("\n")));
    }
    if (done) return;
  }
}

async function streamRun(response, container) {
  const output = $("output");
  output.classList.add("streaming");
  let finished = false;
  try {
    await readEvents(response, (name, data) => {
      if (name === "delta") {
        output.textContent += data.text;
      } else if (name === "repair") {
        $("run-status").textContent = "The output did not fit the format; asking the model to fix it…";
        output.textContent = "";
      } else if (name === "done") {
        finished = true;
        showResult(data);
      } else if (name === "error") {
        finished = true;
        showError(`The run failed (${data.status}): ${data.detail}`);
        showRunLink(data.id, "failed");
      }
    });
  } finally {
    output.classList.remove("streaming");
  }
  if (!finished) showError("The stream ended before the run finished.");
}

async function run(form, container) {
  clearError();
  const problems = formProblems(container);
  const variables = readForm(container);
  if (problems.length > 0) {
    showErrors(container, problems);
    showError("Some variables cannot be read; fix the fields marked.");
    return;
  }
  const stream = $("stream").checked;
  const body = { variables, stream };
  body[form.dataset.selectorKind] = form.dataset.selectorKind === "version"
    ? Number(form.dataset.selectorValue)
    : form.dataset.selectorValue;
  const button = $("run-button");
  button.disabled = true;
  $("run-status").textContent = stream ? "Streaming…" : "Running…";
  startResult();
  try {
    const response = await fetch(`/ui/prompts/${encodeURIComponent(form.dataset.prompt)}/playground/run`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": stream ? "text/event-stream" : "application/json",
        "X-CSRF-Token": csrfToken(),
      },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      $("result").hidden = true;
      await showProblem(response, container);
      return;
    }
    if ((response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      await streamRun(response, container);
    } else {
      showResult(await response.json());
    }
  } catch (error) {
    showError(`The run could not be sent or read: ${error.message}`);
  } finally {
    button.disabled = false;
    $("run-status").textContent = "";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("playground");
  if (form === null) return;
  const container = $("variables");
  const schema = parseData(container, "schema", {});
  const values = parseData(container, "values", {});
  // An earlier run's variables are shown whole, even names the schema has no field for.
  buildForm(container, schema, values, { asJson: hasExtraValues(schema, values) });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form, container);
  });
});

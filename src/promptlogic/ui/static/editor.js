// The version editor: add, remove and reorder messages, and a live preview of the draft
// rendered on the server (in the sandbox) with sample variables, as the author types.
// The form itself posts without this script: messages are repeated `role`/`content` fields,
// in page order.
"use strict";

import { csrfToken } from "./app.js";

const DEBOUNCE_MS = 300;
const MANAGED = /^(messages(\.\d+)?|template|input_schema|variables)$/;

// The variables form generated from the input schema; a JSON textarea without it.
let schemaForm = null;
try {
  schemaForm = await import("./schema_form.js");
} catch (error) {
  schemaForm = null;
}

const form = document.getElementById("editor");
const kind = form.dataset.kind;
const list = form.querySelector("[data-messages]");
const preview = {
  status: document.querySelector("[data-preview-status]"),
  problems: document.querySelector("[data-preview-problems]"),
  messages: document.querySelector("[data-preview-messages]"),
  includes: document.querySelector("[data-preview-includes]"),
  variables: document.querySelector("[data-variables-form]"),
  json: document.querySelector("[data-sample-json]"),
};

let timer = null;
let controller = null;
let sequence = 0;
let shownSchema = null;
// Sample variables the page came with (the prompt's last run's inputs), for the first form.
let initialValues = null;
const seenVariables = new Set();

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Messages

function items() {
  return list ? [...list.querySelectorAll(":scope > [data-message]")] : [];
}

/** Ids, labels and error slots follow each message's position. */
function renumber() {
  const all = items();
  all.forEach((item, i) => {
    const n = i + 1;
    item.querySelector("[data-number]").textContent = String(n);
    const role = item.querySelector('[name="role"]');
    const content = item.querySelector('[name="content"]');
    const errors = item.querySelector("[data-errors-for]");
    role.id = `message-${i}-role`;
    content.id = `message-${i}-content`;
    errors.id = `message-${i}-errors`;
    errors.dataset.errorsFor = `messages.${i}`;
    content.setAttribute("aria-describedby", errors.id);
    content.closest(".field").id = `box-messages-${i}`;
    item.querySelector('label[data-for="role"]').htmlFor = role.id;
    item.querySelector('label[data-for="content"]').htmlFor = content.id;
    const up = item.querySelector('[data-move="up"]');
    const down = item.querySelector('[data-move="down"]');
    up.disabled = i === 0;
    down.disabled = i === all.length - 1;
    up.setAttribute("aria-label", `Move message ${n} up`);
    down.setAttribute("aria-label", `Move message ${n} down`);
    item.querySelector("[data-remove]").setAttribute("aria-label", `Remove message ${n}`);
  });
}

function addMessage() {
  const template = document.getElementById("new-message");
  const item = template.content.querySelector("[data-message]").cloneNode(true);
  for (const node of item.querySelectorAll("[data-js-only]")) node.hidden = false;
  list.append(item);
  renumber();
  item.querySelector('[name="content"]').focus();
  schedule();
}

function onMessageButton(event) {
  const button = event.target.closest("button[data-move], button[data-remove]");
  if (!button || !list.contains(button)) return;
  const item = button.closest("[data-message]");
  if (button.hasAttribute("data-remove")) {
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    renumber();
    const focus = next ? next.querySelector('[name="role"]') : form.querySelector("[data-add-message]");
    if (focus) focus.focus();
  } else if (button.dataset.move === "up" && item.previousElementSibling) {
    item.previousElementSibling.before(item);
    renumber();
    (button.disabled ? item.querySelector('[data-move="down"]') : button).focus();
  } else if (button.dataset.move === "down" && item.nextElementSibling) {
    item.nextElementSibling.after(item);
    renumber();
    (button.disabled ? item.querySelector('[data-move="up"]') : button).focus();
  }
  schedule();
}

// The draft

function variableProblem(field, message) {
  const name = field.replace(/^variables\.?/, "");
  return { field, box: "variables", label: "Sample variables",
    message: name ? `${name}: ${message}` : message, plain: message };
}

/** The preview request's body, or the problems that stop it being sent. */
function draft() {
  const body = {};
  const problems = [];
  if (kind === "chat") {
    body.messages = items().map((item) => ({
      role: item.querySelector('[name="role"]').value,
      content: item.querySelector('[name="content"]').value,
    }));
  } else {
    body.template = form.elements.template.value;
  }
  // Sent as typed: the server names a JSON error's line and column as a save does.
  const schemaText = form.elements.input_schema.value;
  if (schemaText.trim() !== "") body.input_schema = schemaText;
  // The version's context bindings (kept from the base version): the preview binds them.
  const context = form.elements.context ? form.elements.context.value : "";
  if (context.trim() !== "") body.context = context;
  if (schemaForm) {
    const found = schemaForm.formProblems(preview.variables);
    for (const problem of found) problems.push(variableProblem(problem.field, problem.message));
    if (found.length === 0) body.variables = schemaForm.readForm(preview.variables);
  } else {
    body.variables = preview.json.value; // as typed, like the schema
  }
  return { body, problems };
}

// The preview

function setStatus(text, problem = false) {
  preview.status.textContent = text;
  preview.status.classList.toggle("problem", problem);
}

function inputOf(box) {
  if (box.startsWith("messages.")) {
    return document.getElementById(`message-${box.split(".")[1]}-content`);
  }
  return { template: form.elements.template, input_schema: form.elements.input_schema,
    variables: schemaForm ? null : preview.json }[box] || null;
}

/** Each problem next to its field (the boxes the preview knows); in the preview panel, those
 * that have no field on the page. */
function showProblems(problems) {
  for (const slot of document.querySelectorAll("[data-errors-for]")) {
    if (MANAGED.test(slot.dataset.errorsFor)) {
      slot.replaceChildren();
      const input = inputOf(slot.dataset.errorsFor);
      if (input) input.removeAttribute("aria-invalid");
    }
  }
  const unplaced = [];
  const variables = [];
  for (const problem of problems) {
    if (problem.box === "variables" && schemaForm) {
      variables.push(problem);
      continue;
    }
    // The sample variables are beside the panel: their problems are shown once.
    if (problem.box !== "variables") unplaced.push(problem);
    if (!MANAGED.test(problem.box)) continue;
    const slot = document.querySelector(`[data-errors-for="${problem.box}"]`);
    const item = element("li", "", problem.message);
    if (problem.line) item.dataset.line = String(problem.line);
    if (slot) slot.append(item);
    const input = inputOf(problem.box);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  if (schemaForm) {
    const placed = variables.map((problem) => ({ field: problem.field, message: problem.plain }));
    const left = new Set(schemaForm.showErrors(preview.variables, placed).map((p) => p.field));
    unplaced.push(...variables.filter((problem) => left.has(problem.field)));
  }
  preview.problems.replaceChildren(...unplaced.map((problem) => {
    const item = element("li", "", `${problem.label}: ${problem.message}`);
    if (problem.line) item.dataset.line = String(problem.line);
    return item;
  }));
}

/** What the status line says about the problems of a preview. */
function problemStatus(problems) {
  if (problems.every((problem) => problem.box === "variables")) {
    setStatus("Fill in the sample variables to see the rendered "
      + (kind === "chat" ? "messages." : "template."));
  } else {
    const dimmed = preview.messages.childElementCount > 0 ? " The last good preview is dimmed." : "";
    setStatus(`The draft has ${problems.length === 1 ? "a problem" : "problems"}.${dimmed}`, true);
  }
}

function showMessages(messages) {
  preview.messages.replaceChildren(...messages.map((message) => {
    const block = element("div", "preview-message");
    block.append(element("div", "role-name", message.role), element("pre", "", message.content));
    return block;
  }));
  preview.messages.classList.remove("stale");
}

function showIncludes(includes) {
  preview.includes.textContent = includes.length === 0 ? ""
    : "Includes " + includes.map((used) => `${used.prompt} v${used.version}`).join(", ")
      + " (the versions they resolve to now).";
}

/** Sample values for variables the templates started using, so the preview can render. */
function sample(property) {
  const type = Array.isArray(property.type) ? property.type[0] : property.type;
  return { number: 0, integer: 0, boolean: false, array: [], object: {} }[type] ?? "";
}

/** The variables form follows the draft's schema (declared, or inferred from the templates). */
function followSchema(schema) {
  if (!isObject(schema)) return;
  const key = JSON.stringify(schema);
  if (key === shownSchema) return;
  shownSchema = key;
  if (schemaForm) {
    const before = { ...(initialValues || {}), ...schemaForm.readForm(preview.variables) };
    initialValues = null;
    schemaForm.buildForm(preview.variables, schema, before);
    const after = schemaForm.readForm(preview.variables);
    if (JSON.stringify(before) !== JSON.stringify(after)) schedule();
    return;
  }
  let variables;
  try {
    variables = preview.json.value.trim() === "" ? {} : JSON.parse(preview.json.value);
  } catch (error) {
    return;
  }
  if (!isObject(variables)) return;
  let added = false;
  for (const [name, property] of Object.entries(schema.properties || {})) {
    if (seenVariables.has(name)) continue;
    seenVariables.add(name);
    if (!(name in variables)) {
      variables[name] = sample(isObject(property) ? property : {});
      added = true;
    }
  }
  if (added) {
    preview.json.value = JSON.stringify(variables, null, 2);
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, DEBOUNCE_MS);
}

async function refresh() {
  if (controller) controller.abort(); // an older answer must not overwrite this one
  controller = null;
  const mine = ++sequence;
  const { body, problems } = draft();
  if (problems.length > 0) {
    showProblems(problems);
    preview.messages.classList.add("stale");
    problemStatus(problems);
    return;
  }
  controller = new AbortController();
  setStatus("Rendering…");
  let response;
  let data = null;
  try {
    response = await fetch(form.dataset.previewUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": csrfToken(),
      },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal: controller.signal,
    });
    data = await response.json().catch(() => null);
  } catch (error) {
    if (error.name === "AbortError") return;
    if (mine === sequence) setStatus("The preview is unavailable: the server did not answer.", true);
    return;
  }
  if (mine !== sequence) return;
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.statusText;
    setStatus(`The preview is unavailable: ${detail}`, true);
    preview.messages.classList.add("stale");
    return;
  }
  followSchema(data.input_schema);
  showProblems(data.problems);
  showIncludes(data.includes);
  if (data.problems.length > 0) {
    preview.messages.classList.add("stale");
    problemStatus(data.problems);
  } else {
    showMessages(data.messages);
    setStatus("Up to date.");
  }
}

// Wiring

function start() {
  try {
    const given = JSON.parse(preview.json.value || "{}");
    initialValues = isObject(given) ? given : {};
  } catch (error) {
    initialValues = {};
  }
  for (const node of document.querySelectorAll("[data-js-only]")) node.hidden = false;
  if (list) {
    renumber();
    list.addEventListener("click", onMessageButton);
    form.querySelector("[data-add-message]").addEventListener("click", addMessage);
  }
  form.addEventListener("input", (event) => {
    if (["role", "content", "template", "input_schema"].includes(event.target.name)) schedule();
  });
  if (schemaForm) {
    preview.json.closest(".field").querySelector('label[for="sample-variables"]').hidden = true;
    preview.json.hidden = true;
    document.getElementById("sample-variables-hint").hidden = true;
    schemaForm.buildForm(preview.variables, {}, {});
    preview.variables.addEventListener("input", schedule);
    preview.variables.addEventListener("change", schedule);
  } else {
    preview.json.addEventListener("input", schedule);
  }
  setStatus("Rendering…");
  refresh();
}

start();

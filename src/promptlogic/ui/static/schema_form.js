// schema_form.js: a form for the variables of a prompt version, generated from its input
// schema (JSON Schema). No dependencies, no build step; the playground and the editor's live
// preview both use it, so this API stays stable:
//
//   buildForm(container, schema, values = {})
//     Replaces the content of `container` with one labelled field per top-level property of
//     `schema`, required ones first in the order of `required` (arrays keep their order where
//     stored objects may not, as in Postgres JSONB), then the others. A string → a text input
//     (a textarea when it may be long: maxLength > 200, or no maxLength and no format), an
//     enum → a select, a number/integer → a number input, a boolean → a checkbox, anything
//     else (object, array, no type) → a JSON textarea. Required properties are marked,
//     descriptions shown as hints. Each field is prefilled from `values[name]`, else the
//     property's first `examples` entry, else the first object of the schema's own `examples`,
//     else the property's `default`, else left empty. An "Edit as JSON" button swaps the
//     fields for one JSON textarea (and back). Values the schema has no field for are dropped.
//
//   buildForm(container, schema, values, { asJson: true })
//     The same, but opened on the JSON textarea holding `values` exactly (extra names too):
//     for values that must not lose anything, such as an earlier run's.
//
//   hasExtraValues(schema, values) → boolean
//     Whether `values` has names `schema` has no field for (so `asJson` keeps them).
//
//   readForm(container) → object
//     The variables as entered. Never throws. An empty field is left out (template defaults
//     apply; a required one is reported missing); a checkbox is always true or false; a JSON
//     field that does not parse is marked invalid on the page and given as its raw text, so
//     the server names the field. Call `formProblems` first to stop before sending that.
//
//   formProblems(container) → [{field, message}]
//     What cannot be read on the browser's side (JSON that does not parse, a number that is
//     not one), with `field` as the server names it (`variables.NAME`, or `variables`).
//
//   showErrors(container, errors) → [{field, message}]
//     Shows a problem+json `errors` list next to the fields it names (`variables.NAME…`);
//     returns the errors it could not place, for the caller to show. `showErrors(c, [])`
//     clears what was shown.
//
// Every field sends the usual `input` / `change` events, which bubble to `container`: listen
// there to react to edits. Switching between fields and JSON dispatches an `input` event too.
"use strict";

const LONG_TEXT = 200;
let counter = 0;

/** The property's main type: the first non-null one of a type list. */
function typeOf(property) {
  const type = property.type;
  if (Array.isArray(type)) return type.find((t) => t !== "null") || "null";
  return typeof type === "string" ? type : undefined;
}

function has(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The kind of field a property gets. */
function kindOf(property) {
  if (Array.isArray(property.enum) && property.enum.length > 0) return "enum";
  const type = typeOf(property);
  if (type === "boolean") return "boolean";
  if (type === "number" || type === "integer") return "number";
  if (type === "string") {
    const long = typeof property.maxLength === "number"
      ? property.maxLength > LONG_TEXT
      : property.format === undefined;
    return long ? "textarea" : "text";
  }
  return "json";
}

/** The value a field starts with: given, else an example, else the default. */
function initialValue(name, property, values, rootExample) {
  if (has(values, name)) return values[name];
  if (Array.isArray(property.examples) && property.examples.length > 0) {
    return property.examples[0];
  }
  if (rootExample && has(rootExample, name)) {
    return rootExample[name];
  }
  if (property.default !== undefined) return property.default;
  return undefined;
}

function element(tag, attributes = {}, text = undefined) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function inputFor(kind, property, value, id) {
  if (kind === "enum") {
    const select = element("select", { id });
    select.append(element("option", { value: "" }, "—"));
    for (const choice of property.enum) {
      const option = element("option", { value: JSON.stringify(choice) },
        typeof choice === "string" ? choice : JSON.stringify(choice));
      if (value !== undefined && JSON.stringify(value) === JSON.stringify(choice)) {
        option.selected = true;
      }
      select.append(option);
    }
    return select;
  }
  if (kind === "boolean") {
    const box = element("input", { id, type: "checkbox" });
    box.checked = value === true;
    return box;
  }
  if (kind === "number") {
    const input = element("input", {
      id,
      type: "number",
      step: typeOf(property) === "integer" ? "1" : "any",
      min: typeof property.minimum === "number" ? String(property.minimum) : undefined,
      max: typeof property.maximum === "number" ? String(property.maximum) : undefined,
    });
    if (typeof value === "number") input.value = String(value);
    return input;
  }
  if (kind === "text" || kind === "textarea") {
    const type = { email: "email", date: "date", uri: "url" }[property.format] || "text";
    const input = kind === "text"
      ? element("input", { id, type, maxlength: property.maxLength })
      : element("textarea", { id, rows: "3" });
    if (value !== undefined) input.value = typeof value === "string" ? value : JSON.stringify(value);
    return input;
  }
  const area = element("textarea", { id, class: "code", rows: "4", spellcheck: "false" });
  if (value !== undefined) area.value = JSON.stringify(value, null, 2);
  return area;
}

function fieldFor(name, property, required, value) {
  const kind = kindOf(property);
  const id = `schema-field-${++counter}`;
  const wrapper = element("div", { class: kind === "boolean" ? "field checkbox-field" : "field" });
  wrapper.dataset.name = name;
  wrapper.dataset.kind = kind;
  const input = inputFor(kind, property, value, id);
  input.dataset.variable = name;
  if (required) input.setAttribute("aria-required", "true");
  const label = element("label", { for: id, class: "field-label" }, property.title || name);
  if (property.title && property.title !== name) label.title = name;
  if (required) label.append(element("abbr", { title: "required" }, "*"));
  const hints = [];
  if (property.description) hints.push(String(property.description));
  if (kind === "json") hints.push("JSON");
  const describedBy = [];
  const error = element("span", { class: "field-error", id: `${id}-error`, role: "alert" });
  describedBy.push(error.id);
  let hint;
  if (hints.length) {
    hint = element("span", { class: "hint", id: `${id}-hint` }, hints.join(" · "));
    describedBy.push(hint.id);
  }
  input.setAttribute("aria-describedby", describedBy.join(" "));
  if (kind === "boolean") wrapper.append(input, label);
  else wrapper.append(label, input);
  if (hint) wrapper.append(hint);
  wrapper.append(error);
  return wrapper;
}

/** Whether `values` holds names that `schema` has no field for. */
export function hasExtraValues(schema, values) {
  const properties = isObject(schema) && isObject(schema.properties) ? schema.properties : {};
  return isObject(values) && Object.keys(values).some((name) => !has(properties, name));
}

/** Build the form for `schema` in `container` (see the top of this file). */
export function buildForm(container, schema, values = {}, options = {}) {
  const root = isObject(schema) ? schema : {};
  const given = isObject(values) ? values : {};
  container.replaceChildren();
  container.classList.add("schema-form");
  container._schema = root;
  const toggle = element("button", { type: "button", class: "small secondary json-toggle" },
    "Edit as JSON");
  toggle.setAttribute("aria-pressed", "false");
  toggle.addEventListener("click", () => switchMode(container));
  const fields = element("div", { class: "schema-fields" });
  container.append(toggle, fields);
  const properties = isObject(root.properties) ? root.properties : {};
  const required = new Set(Array.isArray(root.required) ? root.required.map(String) : []);
  const rootExample = Array.isArray(root.examples) ? root.examples.find(isObject) : undefined;
  const names = [
    ...[...required].filter((name) => has(properties, name)),
    ...Object.keys(properties).filter((name) => !required.has(name)),
  ];
  for (const name of names) {
    const property = isObject(properties[name]) ? properties[name] : {};
    fields.append(fieldFor(name, property, required.has(name),
      initialValue(name, property, given, rootExample)));
  }
  if (names.length === 0) {
    fields.append(element("p", { class: "muted" }, "The schema declares no variables."));
  }
  if (options && options.asJson) showJson(container, given);
}

function jsonArea(container) {
  return container.querySelector("textarea.schema-json");
}

function showJson(container, variables) {
  const fields = container.querySelector(".schema-fields");
  const toggle = container.querySelector(".json-toggle");
  const id = `schema-json-${++counter}`;
  const wrapper = element("div", { class: "field json-mode" });
  const label = element("label", { for: id }, "Variables as JSON");
  const area = element("textarea", {
    id, class: "code schema-json", rows: "10", spellcheck: "false", "aria-describedby": `${id}-error`,
  });
  area.value = JSON.stringify(variables, null, 2);
  const error = element("span", { class: "field-error", id: `${id}-error`, role: "alert" });
  wrapper.append(label, area, error);
  fields.hidden = true;
  fields.after(wrapper);
  toggle.textContent = "Edit as fields";
  toggle.setAttribute("aria-pressed", "true");
}

function switchMode(container) {
  const area = jsonArea(container);
  if (area === null) {
    showJson(container, readFields(container));
    jsonArea(container).focus();
  } else {
    let parsed;
    try {
      parsed = JSON.parse(area.value || "{}");
    } catch (error) {
      markJson(container, "is not valid JSON; fix it to go back to the fields");
      return;
    }
    if (!isObject(parsed)) {
      markJson(container, "must be a JSON object of variables");
      return;
    }
    buildForm(container, container._schema, parsed);
    const first = container.querySelector("[data-variable]");
    if (first) first.focus();
  }
  container.dispatchEvent(new Event("input", { bubbles: true }));
}

function markJson(container, message) {
  const area = jsonArea(container);
  area.setAttribute("aria-invalid", "true");
  document.getElementById(`${area.id}-error`).textContent = `Variables: ${message}.`;
}

function readField(input, kind) {
  if (kind === "boolean") return { value: input.checked };
  const raw = input.value;
  if (kind === "enum") return raw === "" ? {} : { value: JSON.parse(raw) };
  if (kind === "number") {
    if (input.validity && input.validity.badInput) return { problem: "is not a number", value: raw };
    return raw === "" ? {} : { value: Number(raw) };
  }
  if (kind === "text" || kind === "textarea") return raw === "" ? {} : { value: raw };
  if (raw.trim() === "") return {};
  try {
    return { value: JSON.parse(raw) };
  } catch (error) {
    return { problem: "is not valid JSON", value: raw };
  }
}

function readFields(container, problems = []) {
  const variables = {};
  for (const wrapper of container.querySelectorAll(".schema-fields > .field")) {
    const name = wrapper.dataset.name;
    const input = wrapper.querySelector("[data-variable]");
    const read = readField(input, wrapper.dataset.kind);
    if (read.problem) problems.push({ field: `variables.${name}`, message: read.problem });
    if ("value" in read) variables[name] = read.value;
  }
  return variables;
}

/** The variables as entered (see the top of this file). */
export function readForm(container) {
  const problems = [];
  const area = jsonArea(container);
  let variables;
  if (area !== null) {
    try {
      const parsed = JSON.parse(area.value || "{}");
      if (isObject(parsed)) variables = parsed;
      else problems.push({ field: "variables", message: "must be a JSON object of variables" });
    } catch (error) {
      problems.push({ field: "variables", message: "is not valid JSON" });
    }
    variables = variables || {};
  } else {
    variables = readFields(container, problems);
  }
  showErrors(container, problems);
  return variables;
}

/** What the browser cannot read from the form, as the server would name it. */
export function formProblems(container) {
  const problems = [];
  const area = jsonArea(container);
  if (area !== null) {
    try {
      if (!isObject(JSON.parse(area.value || "{}"))) {
        problems.push({ field: "variables", message: "must be a JSON object of variables" });
      }
    } catch (error) {
      problems.push({ field: "variables", message: "is not valid JSON" });
    }
    return problems;
  }
  readFields(container, problems);
  return problems;
}

/** Show `errors` (problem+json `errors`) next to their fields; returns those not placed. */
export function showErrors(container, errors) {
  for (const input of container.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
  for (const message of container.querySelectorAll(".field-error")) message.textContent = "";
  const area = jsonArea(container);
  const left = [];
  for (const error of errors || []) {
    const field = String(error.field || "");
    const match = /^variables\.([^.]+)/.exec(field);
    const wrapper = match && area === null
      ? [...container.querySelectorAll(".schema-fields > .field")]
          .find((node) => node.dataset.name === match[1])
      : undefined;
    const target = wrapper ? wrapper.querySelector("[data-variable]") : area;
    if (!target || (!wrapper && !field.startsWith("variables"))) {
      left.push(error);
      continue;
    }
    target.setAttribute("aria-invalid", "true");
    const slot = document.getElementById(`${target.id}-error`);
    const rest = wrapper ? field.slice(`variables.${match[1]}`.length).replace(/^\./, "") : field;
    const text = rest ? `${rest}: ${error.message}` : String(error.message);
    slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
  }
  return left;
}

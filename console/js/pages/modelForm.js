// Create or change a model: a form for the three kinds, the JSON view for a LISA payload, and every
// problem the admin API reports shown next to the field it names.

import { admin, ApiError } from "../api.js";
import { h, fill, field, setFieldError, changeNotice } from "../dom.js";
import { kindOf, TYPES, NON_STREAMING_TYPES } from "../status.js";

const KINDS = {
  bedrock: "Amazon Bedrock",
  external: "External, OpenAI-compatible",
  "self-hosted": "Self-hosted container",
};

const DEFAULT_HEALTH = ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"];

function text(value = "", props = {}) {
  return h("input", { type: "text", value, spellcheck: false, ...props });
}
function number(value, props = {}) {
  return h("input", { type: "number", value: value ?? "", inputmode: "numeric", ...props });
}
function checkbox(checked) {
  return h("input", { type: "checkbox", checked: Boolean(checked) });
}
function lines(value) {
  return String(value || "").split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}
function int(input) {
  return input.value === "" ? undefined : Number(input.value);
}

/** The form's fields, keyed by the payload path the API names in its errors. */
function buildFields(model, instanceTypes, editing) {
  const f = {};
  const add = (path, label, input, hint) => (f[path] = field(label, input, hint));
  add("modelId", "Model ID", text(model.modelId || "", { required: true, readOnly: editing, autocomplete: "off" }),
    "What clients put in \"model\": letters, digits, dot, dash, underscore.");
  add("modelName", "Model name", text(model.modelName || "", { required: true, readOnly: editing }),
    "Bedrock: bedrock/<model id>; external: the provider's model, e.g. openai/gpt-4o-mini; self-hosted: the Hugging Face repository.");
  add("modelType", "Type", h("select", { disabled: editing }, TYPES.map((t) =>
    h("option", { value: t, selected: model.modelType === t }, t))));
  add("modelDescription", "Description", text(model.modelDescription || ""));
  add("streaming", "Streaming", checkbox(model.streaming ?? true), "Embedding and rerank models cannot stream.");
  add("allowedGroups", "Allowed groups", text((model.allowedGroups || []).join(", ")),
    "Comma-separated; empty: every signed-in user may call it.");
  add("modelUrl", "Provider URL", text(model.modelUrl || "", { readOnly: editing, placeholder: "https://api.example.com/v1" }),
    "The OpenAI-compatible base URL, ending before /chat/completions.");
  add("apiKey", "Provider API key", h("input", { type: "password", autocomplete: "off", readOnly: editing }),
    "Stored in Secrets Manager; never shown again.");
  const instances = instanceTypes.length ? instanceTypes : [model.instanceType || "g5.xlarge"];
  add("instanceType", "Instance type", h("select", { disabled: editing }, instances.map((t) =>
    h("option", { value: t, selected: (model.instanceType || "g5.xlarge") === t }, t))));
  add("inferenceContainer", "Inference container", h("select", { disabled: editing }, ["vllm", "tgi", "tei", "instructor"].map((c) =>
    h("option", { value: c, selected: (model.inferenceContainer || "vllm") === c }, c))));
  const cc = model.containerConfig || {};
  add("containerConfig.image.baseImage", "Container image", text(cc.image?.baseImage || "vllm/vllm-openai:v0.9.1", { readOnly: editing }));
  add("containerConfig.sharedMemorySize", "Shared memory (MiB)", number(cc.sharedMemorySize ?? 2048, { min: 1, readOnly: editing }));
  add("containerConfig.environment", "Container environment", h("textarea", { rows: 3, spellcheck: false, readOnly: editing },
    Object.entries(cc.environment || {}).map(([k, v]) => `${k}=${v}`).join("\n")), "One NAME=value a line.");
  const as = model.autoScalingConfig || {};
  add("autoScalingConfig.minCapacity", "Minimum instances", number(as.minCapacity ?? 1, { min: 1 }));
  add("autoScalingConfig.maxCapacity", "Maximum instances", number(as.maxCapacity ?? 1, { min: 1 }));
  add("autoScalingConfig.desiredCapacity", "Desired instances", number(as.desiredCapacity, { min: 1 }), "Empty: the minimum.");
  add("autoScalingConfig.metricConfig.targetValue", "Target requests per instance", number(as.metricConfig?.targetValue ?? 30, { min: 1, readOnly: editing }));
  const lb = model.loadBalancerConfig?.healthCheckConfig || {};
  add("loadBalancerConfig.healthCheckConfig.path", "Load balancer health check path", text(lb.path || "/health", { readOnly: editing }));
  add("idleStopMinutes", "Stop after idle minutes", number(model.idleStopMinutes, { min: 5 }), "Empty: never stop for idleness.");
  add("startOnRequest", "Start on request", checkbox(model.startOnRequest), "A request for the stopped model starts it.");
  return f;
}

function createPayload(kind, f) {
  const body = {
    modelId: f.modelId.input.value.trim(),
    modelName: f.modelName.input.value.trim(),
    modelType: f.modelType.input.value,
    modelDescription: f.modelDescription.input.value,
    streaming: NON_STREAMING_TYPES.includes(f.modelType.input.value) ? false : f.streaming.input.checked,
    allowedGroups: lines(f.allowedGroups.input.value),
  };
  if (kind === "external") {
    body.modelUrl = f.modelUrl.input.value.trim();
    const key = f.apiKey.input.value;
    if (key) body.apiKey = key;
  }
  if (kind === "self-hosted") {
    const environment = Object.fromEntries(lines(f["containerConfig.environment"].input.value.replace(/,/g, "\n"))
      .map((line) => [line.split("=")[0].trim(), line.split("=").slice(1).join("=").trim()]));
    Object.assign(body, {
      instanceType: f.instanceType.input.value,
      inferenceContainer: f.inferenceContainer.input.value,
      containerConfig: {
        image: { baseImage: f["containerConfig.image.baseImage"].input.value.trim(), type: "asset" },
        sharedMemorySize: int(f["containerConfig.sharedMemorySize"].input),
        environment,
        healthCheckConfig: { command: DEFAULT_HEALTH, interval: 10, startPeriod: 300, timeout: 5, retries: 3 },
      },
      autoScalingConfig: {
        minCapacity: int(f["autoScalingConfig.minCapacity"].input),
        maxCapacity: int(f["autoScalingConfig.maxCapacity"].input),
        desiredCapacity: int(f["autoScalingConfig.desiredCapacity"].input),
        cooldown: 300,
        defaultInstanceWarmup: 300,
        metricConfig: {
          albMetricName: "RequestCountPerTarget",
          targetValue: int(f["autoScalingConfig.metricConfig.targetValue"].input),
          duration: 60,
          estimatedInstanceWarmup: 300,
        },
      },
      loadBalancerConfig: {
        healthCheckConfig: { path: f["loadBalancerConfig.healthCheckConfig.path"].input.value.trim(), interval: 30, timeout: 10, healthyThresholdCount: 2, unhealthyThresholdCount: 3 },
      },
      idleStopMinutes: int(f.idleStopMinutes.input),
      startOnRequest: f.startOnRequest.input.checked,
    });
  }
  return JSON.parse(JSON.stringify(body)); // drops undefined values
}

function updatePayload(kind, f) {
  const body = {
    modelDescription: f.modelDescription.input.value,
    streaming: NON_STREAMING_TYPES.includes(f.modelType.input.value) ? false : f.streaming.input.checked,
    allowedGroups: lines(f.allowedGroups.input.value),
  };
  if (kind === "self-hosted") {
    body.autoScalingInstanceConfig = {
      minCapacity: int(f["autoScalingConfig.minCapacity"].input),
      maxCapacity: int(f["autoScalingConfig.maxCapacity"].input),
      desiredCapacity: int(f["autoScalingConfig.desiredCapacity"].input),
    };
    body.idleStopMinutes = int(f.idleStopMinutes.input) ?? null;
    body.startOnRequest = f.startOnRequest.input.checked;
  }
  return JSON.parse(JSON.stringify(body));
}

const KIND_FIELDS = {
  bedrock: [],
  external: ["modelUrl", "apiKey"],
  "self-hosted": ["instanceType", "inferenceContainer", "containerConfig.image.baseImage", "containerConfig.sharedMemorySize",
    "containerConfig.environment", "autoScalingConfig.minCapacity", "autoScalingConfig.maxCapacity",
    "autoScalingConfig.desiredCapacity", "autoScalingConfig.metricConfig.targetValue",
    "loadBalancerConfig.healthCheckConfig.path", "idleStopMinutes", "startOnRequest"],
};

/** The field an API error path names, or its nearest named ancestor (autoScalingInstanceConfig → autoScalingConfig). */
function fieldFor(f, path) {
  let candidate = path.replace(/^autoScalingInstanceConfig/, "autoScalingConfig");
  while (candidate) {
    if (f[candidate] && !f[candidate].row.hidden) return f[candidate];
    const prefix = Object.keys(f).find((key) => key.startsWith(`${candidate}.`) && !f[key].row.hidden);
    if (prefix) return f[prefix];
    candidate = candidate.includes(".") ? candidate.slice(0, candidate.lastIndexOf(".")) : "";
  }
  return null;
}

export async function renderModelForm(main, modelId) {
  const editing = Boolean(modelId);
  const [model, instanceTypes] = await Promise.all([
    editing ? admin("GET", `/models/${encodeURIComponent(modelId)}`, undefined, `read ${modelId}`).then((r) => r.model) : {},
    admin("GET", "/models/metadata/instances", undefined, "list the instance types").catch(() => []),
  ]);
  const f = buildFields(model, instanceTypes, editing);
  let kind = editing ? kindOf(model) : "external";
  const summary = h("div.form-errors", { role: "alert", tabindex: "-1" });
  const kindPicker = h("fieldset.kinds", { disabled: editing }, h("legend", {}, "Kind of model"),
    Object.entries(KINDS).map(([value, label]) => h("label.radio", {},
      h("input", { type: "radio", name: "kind", value, checked: value === kind,
        on: { change: () => { kind = value; showKind(); } } }), label)));
  const showKind = () => {
    const kindFields = new Set(Object.values(KIND_FIELDS).flat());
    for (const [path, item] of Object.entries(f)) {
      item.row.hidden = kindFields.has(path) && !KIND_FIELDS[kind].includes(path);
    }
    if (!editing && kind === "bedrock" && !f.modelName.input.value) f.modelName.input.placeholder = "bedrock/anthropic.claude-3-haiku-20240307-v1:0";
  };
  showKind();

  const json = h("textarea.json", { rows: 18, spellcheck: false, "aria-label": "Model payload as JSON" });
  const jsonPanel = h("div.json-panel", { hidden: true },
    h("p.hint", {}, `Paste a LISA ${editing ? "update" : "create"} payload, or edit the one the form built.`), json);
  const formPanel = h("div.form-panel", {}, kindPicker, Object.values(f).map((item) => item.row));
  const viewToggle = h("button.small", { type: "button", "aria-pressed": "false", on: { click: () => {
    const toJson = jsonPanel.hidden;
    if (toJson) json.value = JSON.stringify(editing ? updatePayload(kind, f) : createPayload(kind, f), null, 2);
    jsonPanel.hidden = !toJson;
    formPanel.hidden = toJson;
    viewToggle.setAttribute("aria-pressed", String(toJson));
    viewToggle.textContent = toJson ? "Form view" : "JSON view";
  } } }, "JSON view");

  const showErrors = (error) => {
    Object.values(f).forEach((item) => setFieldError(item, ""));
    const unplaced = [];
    for (const problem of error.fields || []) {
      const target = jsonPanel.hidden ? fieldFor(f, problem.field) : null;
      if (target && !target.error.textContent) setFieldError(target, problem.message);
      else unplaced.push(`${problem.field}: ${problem.message}`);
    }
    const first = Object.values(f).find((item) => item.error.textContent);
    fill(summary, h("p", {}, (error.fields || []).length ? "The model was not saved. Fix the marked fields:" : error.message),
      unplaced.length ? h("ul", {}, unplaced.map((line) => h("li", {}, line))) : null);
    (first ? first.input : summary).focus();
  };

  const submit = h("button", { type: "submit" }, editing ? "Save changes" : "Create model");
  const form = h("form.model-form", { novalidate: true, on: { submit: async (event) => {
    event.preventDefault();
    let body;
    try {
      body = jsonPanel.hidden ? (editing ? updatePayload(kind, f) : createPayload(kind, f)) : JSON.parse(json.value);
    } catch (parseError) {
      showErrors(new ApiError(400, `The JSON is not valid: ${parseError.message}`));
      return;
    }
    submit.disabled = true;
    try {
      const id = editing ? modelId : body.modelId;
      const answer = await admin(editing ? "PUT" : "POST", editing ? `/models/${encodeURIComponent(modelId)}` : "/models",
        body, editing ? `change ${modelId}` : "create the model");
      changeNotice(editing ? `Saved; ${id} is updating.` : `Creating ${id}; its status updates below.`, answer);
      location.hash = `#/models/${encodeURIComponent(id)}`;
    } catch (error) {
      showErrors(error);
    } finally {
      submit.disabled = false;
    }
  } } }, summary, formPanel, jsonPanel, h("div.buttons", {}, submit, h("a.button.secondary", { href: "#/models" }, "Cancel")));

  fill(main, h("div.heading", {}, h("h1", {}, editing ? `Edit ${modelId}` : "New model"), viewToggle), form);
  return null;
}

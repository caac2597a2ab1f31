// One model: its status (live), its status history with reasons and durations (from the admin API
// for administrators; what this browser tab has watched for others), the workflow's progress while it changes, its schedule, usage and copy-paste snippets.

import { admin, getConfig } from "../api.js";
import { session } from "../session.js";
import { h, fill, formatTime, formatDuration, copyButton, notice } from "../dom.js";
import { statusBadge, observe, poll, TRANSITIONAL, kindOf } from "../status.js";
import { actions } from "./models.js";
import { renderSchedule } from "./schedule.js";
import { usageChart } from "./usage.js";

const STEPS = {
  Creating: ["Checking the request", "Creating the model's resources", "Waiting until it answers health checks", "Registering it for serving"],
  Updating: ["Applying the change", "Waiting until it is healthy again"],
  Starting: ["Starting instances", "Waiting until it answers health checks"],
  Stopping: ["Draining requests", "Stopping instances"],
  Deleting: ["Removing it from serving", "Deleting its resources"],
};

function progress(model, since) {
  if (!TRANSITIONAL.has(model.status)) return null;
  const elapsed = Date.now() - since;
  return h("section.card.progress", { "aria-label": "Workflow progress" },
    h("h2", {}, `${model.status}…`),
    h("progress", { "aria-label": `${model.status} in progress` }),
    h("p", {}, `Running for ${formatDuration(elapsed)}. The page updates by itself; you can leave it and come back.`),
    h("ol.steps", {}, STEPS[model.status].map((step) => h("li", {}, step))),
    model.statusReason ? h("p.muted", {}, model.statusReason) : null);
}

/** The status history, oldest first, `at` in ms: the API's statusHistory (administrators get it on
 * GET /models/{id}, Unix seconds) or, without it, what this tab has watched. */
function historyOf(model) {
  const watched = observe(model);
  if (!model.statusHistory?.length) return { entries: watched, fromApi: false };
  const entries = model.statusHistory.map((e) => ({ status: e.status, reason: e.reason || "", at: e.at * 1000 }));
  return { entries, fromApi: true };
}

function historyTable({ entries, fromApi }) {
  const rows = entries.map((entry, i) => {
    const end = entries[i + 1]?.at ?? Date.now();
    return h("tr", {}, h("td", {}, statusBadge(entry.status)), h("td", {}, entry.reason || "—"),
      h("td", {}, new Date(entry.at).toLocaleString()), h("td", {}, `${formatDuration(end - entry.at)}${entries[i + 1] ? "" : " so far"}`));
  });
  const caption = fromApi ? "Every status since the model was created, newest first." : "The changes this browser tab has watched, newest first.";
  return h("section.card", {}, h("h2", {}, "Status history"),
    h("div.table-wrap", {}, h("table.status-history", {}, h("caption.hint", {}, caption), h("thead", {}, h("tr", {}, ["Status", "Reason", "Since", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.reverse()))));
}

/** How to call the model from the serve API, by model type: [label, code] pairs. */
export function snippets(model) {
  const { serveUrl } = getConfig();
  const id = model.modelId;
  const curl = (path, payload, tail = "") => ["curl",
    `curl ${serveUrl}/${path} \\\n  -H "Authorization: Bearer $LISA_TOKEN" \\\n  -H "Content-Type: application/json" \\\n  -d '${JSON.stringify(payload)}'${tail}`];
  const openai = (call) => ["Python (openai)",
    `from openai import OpenAI\nimport os\n\nclient = OpenAI(base_url="${serveUrl}", api_key=os.environ["LISA_TOKEN"])\n${call}`];
  switch (model.modelType) {
    case "embedding":
      return [curl("embeddings", { model: id, input: "Hello" }),
        openai(`print(client.embeddings.create(model="${id}", input="Hello").data[0].embedding[:5])`)];
    case "imagegen":
      return [curl("images/generations", { model: id, prompt: "A lighthouse at dawn" }),
        openai(`print(client.images.generate(model="${id}", prompt="A lighthouse at dawn").data[0])`)];
    case "tts":
      return [curl("audio/speech", { model: id, voice: "alloy", input: "Hello" }, " \\\n  --output hello.mp3"),
        openai(`client.audio.speech.create(model="${id}", voice="alloy", input="Hello").write_to_file("hello.mp3")`)];
    case "stt":
      return [["curl", `curl ${serveUrl}/audio/transcriptions \\\n  -H "Authorization: Bearer $LISA_TOKEN" \\\n  -F model=${id} \\\n  -F file=@hello.wav`],
        openai(`print(client.audio.transcriptions.create(model="${id}", file=open("hello.wav", "rb")).text)`)];
    case "rerank": {
      const payload = { model: id, query: "capital of France", documents: ["Paris is the capital of France.", "Berlin is in Germany."] };
      return [curl("rerank", payload), ["Python (httpx)",
        `import httpx\nimport os\n\nanswer = httpx.post(\n    "${serveUrl}/rerank",\n    headers={"Authorization": f"Bearer {os.environ['LISA_TOKEN']}"},\n    json=${JSON.stringify(payload)},\n)\nprint(answer.json()["results"])`]];
    }
    default:
      return [curl("chat/completions", { model: id, messages: [{ role: "user", content: "Hello" }] }),
        openai(`reply = client.chat.completions.create(\n    model="${id}",\n    messages=[{"role": "user", "content": "Hello"}],\n)\nprint(reply.choices[0].message.content)`)];
  }
}

export async function renderModelDetail(main, modelId) {
  const header = h("div.heading");
  const body = h("div.detail");
  const load = async () => {
    let model;
    try {
      model = (await admin("GET", `/models/${encodeURIComponent(modelId)}`, undefined, `read ${modelId}`)).model;
    } catch (error) {
      if (error.status === 404) {
        fill(body, h("p.notice", {}, `${modelId} does not exist (any more).`), h("a", { href: "#/models" }, "Back to the models"));
        return;
      }
      notice(error.message, "error");
      return;
    }
    const history = historyOf(model);
    const entries = history.entries;
    fill(header, h("h1", {}, model.modelId), statusBadge(model.status), actions(model, load));
    if (!body.dataset.static) {
      body.dataset.static = "1";
      fill(body,
        h("div.live"),
        h("section.card", {}, h("h2", {}, "Details"), h("dl.facts", {},
          [["Name", model.modelName], ["Type", model.modelType], ["Kind", kindOf(model)], ["Hosting", model.hostingType || "—"],
            ["Instance type", model.instanceType || "—"], ["Streaming", model.streaming ? "yes" : "no"],
            ["Context window", model.contextWindow ?? "—"], ["Allowed groups", (model.allowedGroups || []).join(", ") || "everyone"],
            ...(model.fallbacks ? [["Fallbacks", model.fallbacks.join(", ") || "none"]] : []),
            ["Created", formatTime(model.createdAt)]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]))),
        session.isAdmin() && kindOf(model) === "self-hosted" ? renderSchedule(modelId) : null,
        session.isAdmin() ? usageChart({ model: modelId }) : null,
        h("section.card", {}, h("h2", {}, "Call it"), snippets(model).map(([label, code]) =>
          h("div.snippet", {}, h("div.snippet-head", {}, h("h3", {}, label), copyButton(() => code)), h("pre", {}, h("code", {}, code))))));
    }
    fill(body.querySelector(".live"), progress(model, entries[entries.length - 1].at), historyTable(history),
      model.status === "Failed" && model.statusReason ? h("p.notice.error", {}, `Failed: ${model.statusReason}`) : null);
  };
  fill(main, header, body);
  return poll(load, 2000);
}

// The playground: chat with a textgen model (streamed), or embed text with an embedding model,
// through the serve API with the caller's own credential.

import { serve, streamChat } from "../api.js";
import { h, fill, field, notice } from "../dom.js";

export async function renderPlayground(main, params) {
  let models = [];
  try {
    models = (await serve("GET", "/models", undefined, "list the models you may use")).data || [];
  } catch (error) {
    fill(main, h("h1", {}, "Playground"), h("p.notice.error", {}, error.message));
    return null;
  }
  const info = await serve("GET", "/model/info", undefined, "read the models' details").catch(() => ({ data: [] }));
  const typeOf = Object.fromEntries((info.data || []).map((m) => [m.model_name, m.model_info?.mode || m.model_info?.model_type]));
  const isEmbedding = (id) => /embed/i.test(String(typeOf[id] || ""));
  const picker = field("Model", h("select", {}, models.map((m) => h("option", { value: m.id, selected: m.id === params.get("model") }, m.id))));
  const transcript = h("div.transcript", { "aria-live": "polite", "aria-label": "Conversation" });
  const prompt = field("Message", h("textarea", { rows: 3, placeholder: "Ask something…" }), "Enter sends; Shift+Enter adds a line.");
  const send = h("button", { type: "submit" }, "Send");
  const stop = h("button.secondary", { type: "button", hidden: true }, "Stop");
  const history = [];
  let controller = null;
  stop.addEventListener("click", () => controller?.abort());

  const chat = async (text) => {
    history.push({ role: "user", content: text });
    transcript.append(h("div.msg.user", {}, h("span.who", {}, "You"), h("p", {}, text)));
    const reply = h("p.streaming");
    const bubble = h("div.msg.assistant", {}, h("span.who", {}, picker.input.value), reply);
    transcript.append(bubble);
    controller = new AbortController();
    stop.hidden = false;
    let answer = "";
    try {
      await streamChat({ model: picker.input.value, messages: history, max_tokens: 256 }, (delta) => {
        answer += delta;
        reply.textContent = answer;
        transcript.scrollTop = transcript.scrollHeight;
      }, controller.signal);
      history.push({ role: "assistant", content: answer });
    } catch (error) {
      bubble.append(h("p.notice.error", {}, error.message));
      history.pop();
    } finally {
      reply.classList.remove("streaming");
      reply.classList.add("done");
      stop.hidden = true;
      controller = null;
    }
  };

  const embed = async (text) => {
    transcript.append(h("div.msg.user", {}, h("span.who", {}, "Input"), h("p", {}, text)));
    try {
      const result = await serve("POST", "/embeddings", { model: picker.input.value, input: text }, "embed the text");
      const vector = result.data[0].embedding;
      transcript.append(h("div.msg.assistant", {}, h("span.who", {}, `${vector.length} dimensions`),
        h("pre.vector", {}, `[${vector.slice(0, 8).map((x) => x.toFixed(4)).join(", ")}, …]`)));
    } catch (error) {
      transcript.append(h("p.notice.error", {}, error.message));
    }
  };

  const form = h("form.playground-form", { on: { submit: async (event) => {
    event.preventDefault();
    const text = prompt.input.value.trim();
    if (!text || controller) return;
    prompt.input.value = "";
    send.disabled = true;
    try { await (isEmbedding(picker.input.value) ? embed(text) : chat(text)); } finally { send.disabled = false; prompt.input.focus(); }
  } } }, picker.row, transcript, prompt.row, h("div.buttons", {}, send, stop,
    h("button.secondary", { type: "button", on: { click: () => { history.length = 0; fill(transcript); notice("Conversation cleared."); } } }, "Clear")));
  prompt.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  picker.input.addEventListener("change", () => { history.length = 0; fill(transcript); });
  fill(main, h("h1", {}, "Playground"), models.length ? form : h("p", {}, "No model is available to you yet."));
  return () => controller?.abort();
}

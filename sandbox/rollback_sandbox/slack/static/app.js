// The local Slack workspace: renders what the stand-in holds, sends what the user does.
// Plain JavaScript, no build step, no external assets. The server does the Slack side
// (signing, payloads, response_urls); this page only shows state and posts JSON.
"use strict";

const EMOJI = {
  x: "❌", warning: "⚠️", no_entry: "⛔", grey_question: "❔", question: "❓",
  white_check_mark: "✅", heavy_check_mark: "✔️", information_source: "ℹ️", red_circle: "🔴",
  large_green_circle: "🟢", rewind: "⏪", hourglass_flowing_sand: "⏳", hourglass: "⌛",
  point_right: "👉", rotating_light: "🚨", fire: "🔥", tada: "🎉", eyes: "👀", "+1": "👍",
  "-1": "👎", lock: "🔒", arrows_counterclockwise: "🔄", rocket: "🚀", bell: "🔔",
  mag: "🔍", memo: "📝", wave: "👋", construction: "🚧", stop_sign: "🛑", zap: "⚡",
};

const ui = {
  etag: "",
  data: null,
  channel: new URLSearchParams(location.search).get("channel") || "",
  modalKey: "",
  // The view on screen: what the user typed carries over only into a new version of this view.
  modalViewId: "",
  collapsed: new Set(),
  // The long poll in flight: aborted when the user switches channels, so that the old channel's
  // answer never lands on the new one.
  polling: null,
};

// ---------------------------------------------------------------------------------------------
// Small DOM helpers
// ---------------------------------------------------------------------------------------------

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function decode(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);
}

function timeOf(ts) {
  const date = new Date(parseFloat(ts) * 1000);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

// ---------------------------------------------------------------------------------------------
// mrkdwn: *bold*, _italic_, ~strike~, `code`, ```blocks```, > quotes, <links|…>, <@mentions>,
// <!date^…|fallback>, :emoji:
// ---------------------------------------------------------------------------------------------

const INLINE = new RegExp(
  [
    "(`[^`\\n]+`)",
    "(<[^<>\\n]+>)",
    "((?<![A-Za-z0-9*])\\*(?=[^*\\s])[^*\\n]*?[^*\\s]?\\*(?![A-Za-z0-9*]))",
    "((?<![A-Za-z0-9_])_(?=[^_\\s])[^_\\n]*?[^_\\s]?_(?![A-Za-z0-9_]))",
    "((?<![A-Za-z0-9~])~(?=[^~\\s])[^~\\n]*?[^~\\s]?~(?![A-Za-z0-9~]))",
  ].join("|"),
  "g",
);

function special(token) {
  const inner = token.slice(1, -1);
  const [target, label] = splitOnce(inner, "|");
  const users = (ui.data && ui.data.users) || {};
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return h("span", "mention", "@" + (users[id] || label || id));
  }
  if (target.startsWith("#")) {
    const channel = (ui.data.channels || []).find((c) => c.id === target.slice(1));
    return h("span", "mention", "#" + (label || (channel && channel.name) || target.slice(1)));
  }
  if (target.startsWith("!date^")) {
    const seconds = parseInt(target.split("^")[1], 10);
    const node = h("span", "date", label ? decode(label) : new Date(seconds * 1000).toLocaleString());
    if (!Number.isNaN(seconds)) node.title = new Date(seconds * 1000).toLocaleString();
    return node;
  }
  if (target.startsWith("!subteam^")) return h("span", "mention", label || "@group");
  if (target.startsWith("!")) return h("span", "mention", "@" + target.slice(1));
  const url = safeUrl(decode(target));
  if (!url) return document.createTextNode(decode(label || target));
  const link = h("a", null, decode(label || target));
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  return link;
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text, null] : [text.slice(0, at), text.slice(at + 1)];
}

function inline(text, parent) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(emojify(decode(text.slice(last, match.index))));
    const [token, code, angle, bold, italic, strike] = match;
    if (code) parent.append(h("code", null, decode(code.slice(1, -1))));
    else if (angle) parent.append(special(angle));
    else {
      const tag = bold ? "b" : italic ? "i" : "s";
      const node = h(tag);
      inline(token.slice(1, -1), node);
      parent.append(node);
    }
    last = match.index + token.length;
  }
  if (last < text.length) parent.append(emojify(decode(text.slice(last))));
  return parent;
}

function mrkdwn(text) {
  const root = h("div", "mrkdwn");
  text.split("```").forEach((part, i) => {
    if (i % 2 === 1) {
      root.append(h("pre", null, decode(part.replace(/^\n/, "").replace(/\n$/, ""))));
      return;
    }
    const lines = part.split("\n");
    let quote = null;
    lines.forEach((line, j) => {
      if (line.startsWith(">")) {
        if (quote) quote.append("\n");
        else {
          quote = h("blockquote");
          root.append(quote);
        }
        inline(line.replace(/^> ?/, ""), quote);
        return;
      }
      quote = null;
      inline(line, root);
      const next = lines[j + 1];
      if (next !== undefined && !next.startsWith(">")) root.append("\n");
    });
  });
  return root;
}

function textObject(obj, className) {
  if (!obj) return h("span");
  if (obj.type === "mrkdwn") {
    const node = mrkdwn(obj.text || "");
    if (className) node.classList.add(className);
    return node;
  }
  return h("span", className || "plain", obj.emoji === false ? obj.text : emojify(obj.text || ""));
}

// ---------------------------------------------------------------------------------------------
// Block Kit
// ---------------------------------------------------------------------------------------------

function renderBlocks(blocks, where) {
  const root = h("div", "blocks");
  for (const block of blocks || []) root.append(renderBlock(block, where));
  return root;
}

function renderBlock(block, where) {
  switch (block.type) {
    case "header":
      return textObject(block.text, "block header");
    case "divider":
      return h("hr", "block divider");
    case "section": {
      const node = h("div", "block section");
      const main = h("div", "section-main");
      if (block.text) main.append(textObject(block.text));
      if (block.fields) {
        const fields = h("div", "fields");
        for (const field of block.fields) fields.append(textObject(field, "field"));
        main.append(fields);
      }
      node.append(main);
      if (block.accessory) {
        const accessory = h("div", "accessory");
        accessory.append(renderElement(block.accessory, block, where));
        node.append(accessory);
      }
      return node;
    }
    case "context": {
      const node = h("div", "block context");
      for (const el of block.elements || []) {
        if (el.type === "image") node.append(h("span", "image-alt", "🖼 " + (el.alt_text || "")));
        else node.append(textObject(el));
      }
      return node;
    }
    case "actions": {
      const node = h("div", "block actions");
      for (const el of block.elements || []) node.append(renderElement(el, block, where));
      return node;
    }
    case "image":
      return h("div", "block image-alt", "🖼 " + (block.alt_text || block.image_url || "image"));
    case "input":
      return renderInput(block);
    case "markdown":
      return mrkdwn(block.text || "");
    case "rich_text":
      return h("div", "block plain", richText(block));
    default:
      return h("div", "block unsupported", `[${block.type} block: not shown here]`);
  }
}

function richText(node) {
  if (typeof node !== "object" || node === null) return "";
  if (node.type === "text") return node.text || "";
  if (node.type === "emoji") return EMOJI[node.name] || `:${node.name}:`;
  if (node.type === "link") return node.text || node.url || "";
  if (node.type === "user") return "@" + ((ui.data.users || {})[node.user_id] || node.user_id);
  return (node.elements || []).map(richText).join("");
}

function renderElement(el, block, where) {
  if (el.type === "button") {
    const button = h("button", "btn" + (el.style ? " " + el.style : ""));
    button.type = "button";
    button.append(textObject(el.text));
    if (!where || !where.ts) {
      button.disabled = true;
      button.title = "Buttons in modals are not supported by the local workspace";
      return button;
    }
    button.addEventListener("click", async () => {
      if (el.url && safeUrl(el.url)) window.open(el.url, "_blank", "noopener");
      if (el.confirm && !(await confirmDialog(el.confirm))) return;
      button.disabled = true;
      button.classList.add("busy");
      try {
        const result = await post("/ui/api/click", {
          channel: where.channel, ts: where.ts, action_id: el.action_id,
        });
        if (!result.ok) toast(`${result.error}: ${result.detail}`);
      } finally {
        button.disabled = false;
        button.classList.remove("busy");
      }
    });
    return button;
  }
  if (el.type === "image") return h("span", "image-alt", "🖼 " + (el.alt_text || ""));
  if (el.type === "overflow") return disabled("⋯");
  const placeholder = el.placeholder ? el.placeholder.text : el.type;
  return disabled(placeholder + " ▾");
}

function disabled(label) {
  const node = h("button", "btn", label);
  node.disabled = true;
  node.title = "Only buttons are interactive in the local workspace";
  return node;
}

function renderInput(block) {
  const el = block.element || {};
  const node = h("div", "block input");
  node.dataset.blockId = block.block_id;
  const label = h("label", "input-label");
  label.append(textObject(block.label));
  if (block.optional) label.append(h("span", "optional", " (optional)"));
  node.append(label);
  let field;
  if (el.type === "static_select" && el.options) {
    field = h("select");
    field.append(new Option(el.placeholder ? el.placeholder.text : "Choose…", ""));
    for (const option of el.options) field.append(new Option(option.text.text, option.value));
    if (el.initial_option) field.value = el.initial_option.value;
  } else if (["plain_text_input", "number_input", "email_text_input", "url_text_input"].includes(el.type)) {
    field = h(el.multiline ? "textarea" : "input");
    if (!el.multiline) field.type = el.type === "number_input" ? "number" : "text";
    if (el.placeholder) field.placeholder = el.placeholder.text;
    if (el.max_length) field.maxLength = el.max_length;
    if (el.initial_value) field.value = el.initial_value;
  } else {
    node.append(h("div", "unsupported", `[${el.type} input: not supported here]`));
    return node;
  }
  field.id = "input-" + block.block_id;
  field.autocomplete = "off"; // no value from an earlier modal, not even the browser's
  field.dataset.actionId = el.action_id;
  label.htmlFor = field.id;
  node.append(field);
  if (block.hint) node.append(textObject(block.hint, "hint"));
  node.append(h("div", "input-error"));
  return node;
}

function renderAttachment(a) {
  const node = h("div", "attachment");
  if (a.color) node.style.borderLeftColor = a.color.startsWith("#") ? a.color : "#" + a.color;
  if (a.pretext) node.append(mrkdwn(a.pretext));
  if (a.author_name) node.append(h("div", "att-author", a.author_name));
  if (a.title) {
    const title = h("div", "att-title");
    const url = a.title_link && safeUrl(a.title_link);
    if (url) {
      const link = h("a", null, a.title);
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      title.append(link);
    } else title.textContent = a.title;
    node.append(title);
  }
  if (a.text) node.append(mrkdwn(a.text));
  if (a.fields && a.fields.length) {
    const fields = h("div", "fields");
    for (const f of a.fields) {
      const field = h("div", "field" + (f.short ? "" : " wide"));
      field.append(h("b", null, f.title || ""), h("div", null, f.value || ""));
      fields.append(field);
    }
    node.append(fields);
  }
  if (a.blocks) node.append(renderBlocks(a.blocks, null));
  if (a.footer) node.append(h("div", "context", a.footer));
  return node;
}

// ---------------------------------------------------------------------------------------------
// Messages and the channel
// ---------------------------------------------------------------------------------------------

function renderMessage(m, isReply) {
  const node = h("article", "msg" + (m.ephemeral ? " ephemeral" : "") + (isReply ? " reply" : ""));
  node.dataset.ts = m.ts;
  const avatar = h("div", "avatar" + (m.is_bot ? " bot" : ""), (m.author || "?").charAt(0).toUpperCase());
  const body = h("div", "msg-body");
  const meta = h("div", "meta");
  meta.append(h("span", "author", m.author));
  if (m.is_bot && !m.system) meta.append(h("span", "app-badge", "APP"));
  meta.append(h("time", "time", timeOf(m.ts)));
  if (m.edited) meta.append(h("span", "edited", "(edited)"));
  body.append(meta);
  const where = { channel: m.channel, ts: m.ts };
  if (m.blocks && m.blocks.length) body.append(renderBlocks(m.blocks, where));
  else if (m.text) body.append(mrkdwn(m.text));
  for (const a of m.attachments || []) body.append(renderAttachment(a));
  if (m.ephemeral) {
    const note = h("div", "ephemeral-note", "👁 Only visible to you · ");
    const dismiss = h("a", null, "Dismiss");
    dismiss.href = "#";
    dismiss.addEventListener("click", async (event) => {
      event.preventDefault();
      await post("/ui/api/dismiss", { channel: m.channel, ts: m.ts });
    });
    note.append(dismiss);
    body.append(note);
  }
  if (m.replies && m.replies.length) body.append(renderThread(m));
  node.append(avatar, body);
  return node;
}

function renderThread(m) {
  const box = h("div", "thread");
  const count = m.replies.length;
  const toggle = h("button", "thread-toggle", `${count} ${count === 1 ? "reply" : "replies"}`);
  toggle.type = "button";
  const open = !ui.collapsed.has(m.ts);
  toggle.classList.toggle("open", open);
  toggle.addEventListener("click", () => {
    if (ui.collapsed.has(m.ts)) ui.collapsed.delete(m.ts);
    else ui.collapsed.add(m.ts);
    render(ui.data);
  });
  box.append(toggle);
  if (open) for (const reply of m.replies) box.append(renderMessage(reply, true));
  return box;
}

function render(data) {
  ui.data = data;
  ui.channel = data.channel.id;
  document.title = `#${data.channel.name} · Local Slack`;
  document.getElementById("team").textContent = data.team;
  document.getElementById("me").textContent = `● you are @${data.me.name}`;
  renderChannels(data);
  renderBot(data.bot);
  renderCalls(data.calls);
  document.getElementById("channel-name").textContent = "#" + data.channel.name;
  const topic = document.getElementById("channel-topic");
  topic.replaceChildren(mrkdwn(data.channel.topic || ""));
  const input = document.getElementById("composer-input");
  input.placeholder = `Message #${data.channel.name} — try ${data.commands[0]} checkout`;

  const timeline = document.getElementById("timeline");
  const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
  const previous = timeline.scrollTop;
  const items = data.messages.map((m) => renderMessage(m, false));
  if (!items.length) items.push(emptyChannel(data));
  timeline.replaceChildren(...items);
  timeline.scrollTop = atBottom ? timeline.scrollHeight : previous;
  renderModal(data.modal);
}

function emptyChannel(data) {
  const node = h("div", "empty");
  node.append(h("h3", null, `This is the very beginning of #${data.channel.name}`));
  const hint = h("p");
  inline(`Type \`${data.commands[0]} checkout\` below and press Enter: the bot answers with the versions it can roll back to.`, hint);
  node.append(hint);
  return node;
}

function renderChannels(data) {
  const list = document.getElementById("channels");
  list.replaceChildren(
    ...data.channels.map((c) => {
      const item = h("li", c.id === data.channel.id ? "active" : "");
      const link = h("a", null, "# " + c.name);
      link.href = "?channel=" + encodeURIComponent(c.id);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        switchChannel(c.id, link.href);
      });
      item.append(link);
      return item;
    }),
  );
}

function switchChannel(id, href) {
  history.replaceState(null, "", href);
  ui.channel = id;
  ui.etag = "";
  if (ui.polling) ui.polling.abort(); // the poll loop starts over with the new channel
  refresh();
}

function renderBot(bot) {
  const node = document.getElementById("bot-status");
  node.className = "bot-status " + bot.state;
  node.querySelector(".label").textContent = `${bot.name} · ${bot.state}`;
  node.title = bot.detail;
  const banner = document.getElementById("banner");
  banner.hidden = bot.state === "online" || bot.state === "unknown";
  banner.replaceChildren(
    `${bot.name} is ${bot.state}: ${bot.detail}. Commands and clicks go to ${bot.events_url}. ` +
      "Start the bot for this workspace with the bot token and signing secret it was started " +
      "with (never shown on this page):",
    h("code", null, bot.command),
  );
}

function renderCalls(calls) {
  const list = document.getElementById("call-list");
  list.replaceChildren(
    ...calls
      .slice()
      .reverse()
      .map((c) => {
        const item = h("li", c.ok ? "ok" : "failed", c.method);
        if (!c.ok) item.append(h("span", "call-error", " " + c.error));
        item.title = new Date(c.at * 1000).toLocaleTimeString();
        return item;
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// Modals
// ---------------------------------------------------------------------------------------------

function renderModal(view) {
  const backdrop = document.getElementById("modal-backdrop");
  const key = view ? `${view.id}/${view.hash}` : "";
  if (key === ui.modalKey) return;
  // The same view updated (views.update) keeps what was typed; a new view starts empty, as in
  // Slack: a reason typed for one rollback must never reach another.
  const typed = view && view.id === ui.modalViewId ? modalValues() : {};
  ui.modalKey = key;
  ui.modalViewId = view ? view.id : "";
  backdrop.hidden = !view;
  if (!view) {
    document.getElementById("modal-body").replaceChildren();
    return;
  }
  document.getElementById("modal-title").textContent = emojify(view.title.text);
  const body = document.getElementById("modal-body");
  body.replaceChildren(renderBlocks(view.blocks, null));
  for (const field of body.querySelectorAll("[data-action-id]")) {
    if (typed[field.dataset.actionId] !== undefined) field.value = typed[field.dataset.actionId];
  }
  const submit = document.getElementById("modal-submit");
  submit.hidden = !view.submit;
  submit.textContent = view.submit ? view.submit.text : "Submit";
  document.getElementById("modal-close").textContent = view.close ? view.close.text : "Cancel";
  document.getElementById("modal-error").hidden = true;
  const first = body.querySelector("input, textarea, select");
  if (first) first.focus();
}

function modalValues() {
  const values = {};
  for (const field of document.querySelectorAll("#modal-body [data-action-id]")) {
    if (field.value !== "") values[field.dataset.actionId] = field.value;
  }
  return values;
}

async function submitModal(event) {
  event.preventDefault();
  const view = ui.data && ui.data.modal;
  if (!view) return;
  const submit = document.getElementById("modal-submit");
  submit.disabled = true;
  for (const error of document.querySelectorAll(".input-error")) error.textContent = "";
  try {
    const result = await post(`/ui/api/views/${encodeURIComponent(view.id)}/submit`, {
      values: modalValues(),
    });
    const errorBox = document.getElementById("modal-error");
    errorBox.hidden = result.ok;
    if (!result.ok) errorBox.textContent = `We had some trouble connecting (${result.error}): ${result.detail}`;
    for (const [blockId, message] of Object.entries(result.errors || {})) {
      const block = document.querySelector(`#modal-body [data-block-id="${CSS.escape(blockId)}"]`);
      if (block) {
        block.classList.add("has-error");
        block.querySelector(".input-error").textContent = message;
      } else {
        errorBox.hidden = false;
        errorBox.textContent = message;
      }
    }
    if (result.closed) hideModal();
  } finally {
    submit.disabled = false;
  }
}

function hideModal() {
  document.getElementById("modal-backdrop").hidden = true;
  document.getElementById("modal-body").replaceChildren();
  ui.modalKey = "";
  ui.modalViewId = "";
  if (ui.data) ui.data.modal = null;
}

async function closeModal() {
  const view = ui.data && ui.data.modal;
  hideModal();
  if (view) await post(`/ui/api/views/${encodeURIComponent(view.id)}/close`, {});
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const backdrop = h("div", "confirm-backdrop");
    const box = h("div", "confirm");
    box.append(h("h2", null, confirm.title ? confirm.title.text : "Are you sure?"));
    box.append(textObject(confirm.text));
    const buttons = h("footer");
    const deny = h("button", "btn", confirm.deny ? confirm.deny.text : "Cancel");
    const ok = h("button", "btn " + (confirm.style || "primary"), confirm.confirm ? confirm.confirm.text : "Yes");
    const done = (answer) => {
      backdrop.remove();
      resolve(answer);
    };
    deny.addEventListener("click", () => done(false));
    ok.addEventListener("click", () => done(true));
    buttons.append(deny, ok);
    box.append(buttons);
    backdrop.append(box);
    document.body.append(backdrop);
    ok.focus();
  });
}

// ---------------------------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------------------------

async function post(path, body) {
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) return { ok: false, error: `HTTP ${response.status}`, detail: await response.text() };
    const result = await response.json();
    refresh();
    return result;
  } catch (error) {
    return { ok: false, error: "offline", detail: "the local workspace server is not answering" };
  }
}

let toastTimer = null;
function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

let generation = 0;
async function refresh() {
  // A fresh fetch of the state now (after an action); the long poll carries on separately.
  generation += 1;
  const mine = generation;
  const channel = ui.channel;
  const response = await fetch(`/ui/api/state?channel=${encodeURIComponent(channel)}`);
  if (!response.ok || mine !== generation) return;
  const { etag, state } = await response.json();
  // A newer refresh, or a switch to another channel meanwhile: this answer is out of date.
  if (mine !== generation || channel !== ui.channel) return;
  ui.etag = etag;
  render(state);
}

async function poll() {
  for (;;) {
    const channel = ui.channel;
    const controller = new AbortController();
    ui.polling = controller;
    try {
      const query = `channel=${encodeURIComponent(channel)}&since=${encodeURIComponent(ui.etag)}`;
      const response = await fetch(`/ui/api/state?${query}`, { signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { etag, state } = await response.json();
      document.body.classList.remove("disconnected");
      if (channel !== ui.channel) continue; // switched while this answer was on its way
      if (etag !== ui.etag) {
        ui.etag = etag;
        render(state);
      }
    } catch (error) {
      if (controller.signal.aborted) continue; // a channel switch: poll the new one at once
      document.body.classList.add("disconnected");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      if (ui.polling === controller) ui.polling = null;
    }
  }
}

function setupComposer() {
  const form = document.getElementById("composer");
  const input = document.getElementById("composer-input");
  const hint = document.getElementById("command-hint");
  input.addEventListener("input", () => {
    const text = input.value;
    const commands = (ui.data && ui.data.commands) || [];
    hint.hidden = !text.startsWith("/") || text.includes(" ");
    hint.replaceChildren();
    for (const command of commands.filter((c) => c.startsWith(text))) {
      const item = h("div", "hint-item");
      inline(`*${command}* \`SERVICE\` · \`status SERVICE\` · \`history SERVICE\` · \`help\`  — roll a service back`, item);
      item.addEventListener("click", () => {
        input.value = command + " ";
        hint.hidden = true;
        input.focus();
      });
      hint.append(item);
    }
    if (!hint.childElementCount) hint.hidden = true;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    hint.hidden = true;
    const result = await post("/ui/api/send", { channel: ui.channel, text });
    if (!result.ok) {
      toast(`${result.error}: ${result.detail}`);
      if (result.error === "offline") input.value = text;
    }
  });
  input.focus();
}

document.getElementById("modal").addEventListener("submit", submitModal);
document.getElementById("modal-close").addEventListener("click", closeModal);
document.getElementById("modal-x").addEventListener("click", closeModal);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !document.getElementById("modal-backdrop").hidden) closeModal();
});
setupComposer();
poll();

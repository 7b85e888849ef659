// lanspread Downloads panel: the queue in order, rates, who pulls from us, free space.
// Like the rest of the page it decides nothing: the server's view model
// (view.downloads) gives every row, label and button; this file draws it, sends
// the clicks as commands, puts the progress in the tab title and turns download
// notices into desktop notifications when the player asked for them.
"use strict";

(() => {
  const NOTIFY_KEY = "lanspread.notify";
  const BUTTONS = {
    pause: { label: "Pause", icon: "pause", command: (game) => ({ cmd: "pause", game }) },
    resume: { label: "Resume", icon: "download", command: (game) => ({ cmd: "resume", game }) },
    "move-up": { label: "Move up", icon: "up", command: (game) => ({ cmd: "move-download", game, step: -1 }) },
    "move-down": { label: "Move down", icon: "down", command: (game) => ({ cmd: "move-download", game, step: 1 }) },
  };
  const $ = (id) => document.getElementById(id);
  const state = { panel: null, rows: new Map() };

  function page() { return window.lanspreadPage; }

  async function send(body) {
    const reply = await page().post("/api/command", body);
    if (!reply.ok) page().toast(reply.error.message);
    return reply;
  }

  // -- the panel ----------------------------------------------------------------------------

  function isOpen() { return !$("downloads").hidden; }

  // The page's dialog stack traps Tab, closes on Escape and gives the focus back.
  // Drawn once it shows: render() skips a hidden panel, so drawing first drew nothing.
  function open() {
    page().openDialog("downloads", $("downloads-close"));
    render();
  }

  function close() {
    page().closeDialog("downloads");
  }

  function makeRow(game) {
    const { el } = page();
    const item = el("li", "dl-row");
    item.dataset.download = game;
    const head = el("div", "dl-row-head");
    const name = el("span", "dl-name");
    const pill = el("span", "pill");
    const done = el("span", "dl-done");
    const buttons = el("span", "dl-buttons");
    head.append(name, pill, done, buttons);
    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    const fill = el("div", "bar-fill");
    bar.append(fill);
    const facts = el("div", "dl-facts");
    const rate = el("span", "dl-speed");
    const eta = el("span", "dl-eta");
    const note = el("span", "dl-note");
    facts.append(rate, eta, note);
    item.append(head, bar, facts);
    return { item, name, pill, done, buttons, bar, fill, rate, eta, note, shown: "" };
  }

  function drawButtons(row, data) {
    const key = data.buttons.join(",");
    if (row.shown === key) return;
    row.shown = key;
    const { el, fillIcons } = page();
    const nodes = data.buttons.map((kind) => {
      const spec = BUTTONS[kind];
      const button = el("button", `btn btn-ghost dl-btn dl-${kind}`);
      button.type = "button";
      button.dataset.kind = kind;
      button.setAttribute("aria-label", `${spec.label} ${data.name}`);
      button.title = spec.label;
      const glyph = el("span");
      glyph.dataset.icon = spec.icon;
      button.append(glyph);
      if (kind === "pause" || kind === "resume") button.append(el("span", "", spec.label));
      button.addEventListener("click", () => send(spec.command(data.game)));
      return button;
    });
    row.buttons.replaceChildren(...nodes);
    fillIcons(row.buttons);
  }

  function drawRow(row, data) {
    row.item.dataset.state = data.state;
    row.bar.hidden = !data.done_label;
    row.name.textContent = data.name;
    row.pill.textContent = data.state_label;
    row.pill.className = `pill tone-${{ downloading: "busy", queued: "info", paused: "warn", failed: "error" }[data.state] || "muted"}`;
    row.done.textContent = data.done_label ? `${data.percent_label} · ${data.done_label}` : "";
    row.fill.style.setProperty("--fill", `${data.percent}%`);
    row.bar.setAttribute("aria-valuenow", String(Math.floor(data.percent)));
    row.bar.setAttribute("aria-label", `${data.name}: ${data.percent_label}`);
    row.rate.textContent = data.rate_label || "";
    row.rate.hidden = !data.rate_label;
    row.eta.textContent = data.eta_label ? `${data.eta_label} left` : "";
    row.eta.hidden = !data.eta_label;
    row.note.textContent = data.note || "";
    row.note.hidden = !data.note;
    drawButtons(row, data);
  }

  function render() {
    const panel = state.panel;
    if (!panel || !isOpen()) return;
    const { el } = page();
    $("dl-down").textContent = panel.down_label;
    $("dl-up").textContent = panel.up_label;
    $("dl-free").textContent = panel.free_label;
    $("dl-pause-all").disabled = !panel.can_pause_all;
    $("dl-resume-all").disabled = !panel.can_resume_all;
    const list = $("dl-list");
    const seen = new Set();
    const ordered = panel.rows.map((data) => {
      let row = state.rows.get(data.game);
      if (!row) { row = makeRow(data.game); state.rows.set(data.game, row); }
      seen.add(data.game);
      drawRow(row, data);
      return row.item;
    });
    for (const game of [...state.rows.keys()]) if (!seen.has(game)) state.rows.delete(game);
    // Reorder only when the order changed: a focused button keeps its focus.
    const current = [...list.children];
    if (current.length !== ordered.length || current.some((node, i) => node !== ordered[i])) {
      const focused = document.activeElement;
      list.replaceChildren(...ordered);
      if (focused && list.contains(focused)) focused.focus();
    }
    $("dl-empty").hidden = panel.rows.length > 0;
    $("dl-uploads").replaceChildren(...panel.uploads.map((upload) => {
      const item = el("li", "dl-upload");
      item.append(el("span", "dl-peer", upload.peer), el("span", "dl-game", upload.game), el("span", "dl-speed", upload.rate_label));
      return item;
    }));
    $("dl-uploads-empty").hidden = panel.uploads.length > 0;
  }

  function onView(view) {
    const panel = view.downloads || null;
    state.panel = panel;
    document.title = panel ? panel.page_title : "lanspread";
    const count = $("downloads-count");
    count.textContent = panel ? String(panel.active) : "0";
    count.hidden = !panel || panel.active === 0;
    render();
  }

  // -- desktop notifications ------------------------------------------------------------------

  function notifyWanted() { return localStorage.getItem(NOTIFY_KEY) === "on"; }

  async function setNotify(wanted) {
    if (!wanted) { localStorage.setItem(NOTIFY_KEY, "off"); return; }
    if (!("Notification" in window)) {
      page().toast("This browser cannot show desktop notifications");
      $("dl-notify").checked = false;
      return;
    }
    const permission = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    const granted = permission === "granted";
    localStorage.setItem(NOTIFY_KEY, granted ? "on" : "off");
    $("dl-notify").checked = granted;
    if (!granted) page().toast("Notifications are blocked for this page in the browser's settings");
  }

  function onNotice(notice) {
    if (!notice.download || notice.kind === "warn" || !notifyWanted()) return;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try { new Notification(notice.title, { body: notice.text, tag: `lanspread-${notice.id}` }); } catch (err) { /* not allowed here */ }
  }

  // -- wiring -----------------------------------------------------------------------------------

  function wire() {
    $("open-downloads").addEventListener("click", open);
    $("downloads-close").addEventListener("click", close);
    $("downloads").addEventListener("click", (event) => { if (event.target === $("downloads")) close(); });
    $("dl-pause-all").addEventListener("click", () => send({ cmd: "pause-all" }));
    $("dl-resume-all").addEventListener("click", () => send({ cmd: "resume-all" }));
    $("dl-notify").checked = notifyWanted() && "Notification" in window && Notification.permission === "granted";
    $("dl-notify").addEventListener("change", (event) => setNotify(event.target.checked));
    document.addEventListener("lanspread:view", (event) => onView(event.detail));
    document.addEventListener("lanspread:notice", (event) => onNotice(event.detail));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();

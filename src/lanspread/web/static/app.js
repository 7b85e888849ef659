// lanspread page: a thin renderer of the view model the peer computes.
// It decides nothing about game state: every label, action and number comes from
// the server's view; the page only draws it, filters it and sends clicks back.
"use strict";

(() => {
  // -- icons (inline SVG, stroke = currentColor) ---------------------------------------
  const svg = (body, extra = "") =>
    `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" ${extra}>${body}</svg>`;
  const ICONS = {
    logo: `<svg viewBox="0 0 40 40" aria-hidden="true"><path d="M20 12.5 11.5 26M20 12.5 28.5 26M11.5 26h17" stroke="#fff" stroke-width="2.2" stroke-opacity=".7"/><circle cx="20" cy="12.5" r="3.8" fill="#fff"/><circle cx="11.5" cy="26" r="3.8" fill="#fff"/><circle cx="28.5" cy="26" r="3.8" fill="#fff"/></svg>`,
    download: svg('<path d="M12 3v12"/><path d="m7 10 5 5 5-5"/><path d="M5 21h14"/>'),
    play: svg('<path d="M7 4.5v15l12-7.5z" fill="currentColor" stroke="none"/>'),
    update: svg('<path d="M21 12a9 9 0 1 1-2.64-6.36"/><path d="M21 3v6h-6"/>'),
    install: svg('<path d="M21 8 12 3 3 8v8l9 5 9-5z"/><path d="m3 8 9 5 9-5"/><path d="M12 13v8"/>'),
    check: svg('<path d="m5 12 5 5 9-10"/>'),
    grid: svg('<rect x="3" y="3" width="7.5" height="7.5" rx="2"/><rect x="13.5" y="3" width="7.5" height="7.5" rx="2"/><rect x="3" y="13.5" width="7.5" height="7.5" rx="2"/><rect x="13.5" y="13.5" width="7.5" height="7.5" rx="2"/>'),
    users: svg('<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0"/><path d="M16 4.6a3.5 3.5 0 0 1 0 6.8"/><path d="M18.5 14.2A6.5 6.5 0 0 1 21.5 20"/>'),
    search: svg('<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5"/>'),
    settings: svg('<circle cx="12" cy="12" r="3"/><path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"/>'),
    alert: svg('<path d="M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"/><path d="M12 9v4"/><path d="M12 17h.01"/>'),
    close: svg('<path d="M18 6 6 18M6 6l12 12"/>'),
    folder: svg('<path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/>'),
    trash: svg('<path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/>'),
    uninstall: svg('<path d="M21 8 12 3 3 8v8l9 5 9-5z"/><path d="M9 12h6"/>'),
    lock: svg('<rect x="4" y="11" width="16" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>'),
    speed: svg('<path d="M12 14l4-4"/><path d="M3.5 18a9 9 0 1 1 17 0"/>'),
    clock: svg('<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>'),
    off: svg('<circle cx="12" cy="12" r="9"/><path d="m5.6 5.6 12.8 12.8"/>'),
    shield: svg('<path d="M12 3 4 6v6c0 4.5 3.4 8.3 8 9 4.6-.7 8-4.5 8-9V6z"/><path d="m8.5 12 2.5 2.5 4.5-5"/>'),
    repair: svg('<path d="M14.7 6.3a4 4 0 0 0-5.4 5.2L3.5 17.3a1.8 1.8 0 0 0 2.6 2.6l5.8-5.8a4 4 0 0 0 5.2-5.4l-2.6 2.6-2.4-.6-.6-2.4z"/>'),
  };
  const ACTION_ICONS = {
    download: "download", paused: "download", failed: "update", install: "install", play: "play",
    update: "update", installed: "check", unavailable: "off", found: "folder",
  };
  const SECONDARY_ICONS = {
    cancel: "close", discard: "trash", uninstall: "uninstall", remove: "trash",
    "view-files": "folder", play: "play", install: "install", update: "update", verify: "shield",
  };
  const FILTER_TITLES = {
    all: "All games", installed: "Installed", downloadable: "Downloadable", updates: "Updates",
  };
  const RECONNECT_FIRST_MS = 250;
  const RECONNECT_MAX_MS = 4000;
  const TOAST_MS = 6000;
  // A notice names files: give the player time to read it.
  const NOTICE_TOAST_MS = 12000;
  const NOTICE_KEY = "lanspread.notice";

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const icon = (name) => {
    const span = el("span");
    span.dataset.icon = name;
    span.innerHTML = ICONS[name] || "";
    return span;
  };
  const fillIcons = (root) => {
    root.querySelectorAll("[data-icon]").forEach((node) => {
      if (!node.firstChild && ICONS[node.dataset.icon]) node.innerHTML = ICONS[node.dataset.icon];
    });
  };

  const state = {
    view: null,
    filter: "all",
    query: "",
    detail: null,
    openPeers: new Set(),
    socket: null,
    retryMs: RECONNECT_FIRST_MS,
    locked: false,
    setupFilled: false,
    confirmAction: null,
    verify: null,
    // null in a fresh tab: what happened before it opened is old news, not a toast.
    noticeSeen: sessionStorage.getItem(NOTICE_KEY) === null ? null : Number(sessionStorage.getItem(NOTICE_KEY)),
  };
  const cards = new Map();
  const peers = new Map();

  // -- talking to the peer ------------------------------------------------------------

  async function post(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
        credentials: "same-origin",
      });
    } catch (err) {
      return { ok: false, error: { code: "offline", message: "lanspread is not answering" } };
    }
    let payload = null;
    try { payload = await response.json(); } catch (err) { payload = null; }
    if (response.status === 401) lock();
    if (payload && typeof payload.ok === "boolean") return payload;
    return { ok: false, error: { code: "http-" + response.status, message: response.statusText } };
  }

  async function sendCommand(cmd, game, extra) {
    const reply = await post("/api/command", Object.assign({ cmd, game }, extra || {}));
    if (!reply.ok) toast(reply.error.message);
    return reply;
  }

  async function openFolder(game) {
    const reply = await post(`/api/games/${encodeURIComponent(game)}/open-folder`);
    if (!reply.ok) toast(reply.error.message);
  }

  function connect() {
    if (state.locked) return;
    setConn("connecting", state.view ? "Reconnecting" : "Connecting");
    const socket = new WebSocket(`ws://${location.host}/api/stream`);
    state.socket = socket;
    socket.onopen = () => { state.retryMs = RECONNECT_FIRST_MS; };
    socket.onmessage = (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch (err) { return; }
      if (data.type === "view") {
        setConn("live", "Live");
        document.body.dataset.seq = String(data.seq);
        render(data.view);
      }
    };
    socket.onclose = () => {
      if (state.socket !== socket) return;
      state.socket = null;
      setConn("reconnecting", "Reconnecting");
      probeAccess().then((allowed) => {
        if (!allowed) return lock();
        const wait = state.retryMs;
        state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
        setTimeout(connect, wait);
      });
    };
  }

  async function probeAccess() {
    try {
      const response = await fetch("/api/view", { credentials: "same-origin" });
      return response.status !== 401 && response.status !== 403;
    } catch (err) {
      return true; // the server is restarting or gone: keep trying
    }
  }

  function setConn(kind, text) {
    const conn = $("conn");
    conn.dataset.state = kind;
    $("conn-text").textContent = text;
  }

  function lock() {
    state.locked = true;
    if (state.socket) { state.socket.onclose = null; state.socket.close(); }
    showScreen("refused");
  }

  function showScreen(name) {
    for (const id of ["boot", "refused", "setup", "app"]) $(id).hidden = id !== name;
    if (name !== "app") for (const id of ["detail", "confirm", "settings"]) $(id).hidden = true;
  }

  // -- rendering ------------------------------------------------------------------------

  function render(view) {
    state.view = view;
    if (state.locked) return;
    if (view.setup.needed) {
      showScreen("setup");
      if (!state.setupFilled) {
        $("setup-name").value = view.setup.display_name;
        $("setup-dir").value = view.setup.game_dir;
        state.setupFilled = true;
      }
      return;
    }
    showScreen("app");
    renderBanner(view.runtime);
    renderCounts(view.counts);
    renderMe(view.me);
    renderPeers(view.peers);
    renderTransfer(view.transfer);
    renderGrid(view.games);
    applyFilters();
    if (state.detail) renderDetail();
    renderNotices(view.notices || []);
  }

  function renderNotices(notices) {
    const newest = notices.reduce((top, notice) => Math.max(top, notice.id), 0);
    if (state.noticeSeen === null) state.noticeSeen = newest;
    // A restarted lanspread counts from 1 again: forget the old count.
    if (newest < state.noticeSeen) state.noticeSeen = 0;
    for (const notice of notices) {
      if (notice.id <= state.noticeSeen) continue;
      toast(notice.text, "ok", notice.title, NOTICE_TOAST_MS);
    }
    state.noticeSeen = Math.max(state.noticeSeen, newest);
    sessionStorage.setItem(NOTICE_KEY, String(state.noticeSeen));
  }

  function renderBanner(runtime) {
    const show = runtime.state !== "running";
    $("banner").hidden = !show;
    $("banner").dataset.state = runtime.state;
    if (show) {
      $("banner-text").textContent = runtime.message || "The lanspread peer stopped.";
      $("banner-restart").hidden = !runtime.can_restart;
    }
  }

  function renderTransfer(transfer) {
    const box = $("transfer");
    box.hidden = !transfer;
    if (!transfer) return;
    $("transfer-up").textContent = transfer.up_label;
    $("transfer-down").textContent = transfer.down_label;
    $("transfer-gaming").hidden = !transfer.gaming_label;
    $("transfer-gaming").textContent = transfer.gaming_label || "";
    box.classList.toggle("is-gaming", Boolean(transfer.gaming_label));
    box.setAttribute("aria-label", transfer.line);
    box.title = transfer.line;
  }

  function renderCounts(counts) {
    document.querySelectorAll("[data-count]").forEach((node) => {
      const value = counts[node.dataset.count];
      node.textContent = String(value);
      node.classList.toggle("has-items", value > 0);
    });
  }

  function renderMe(me) {
    if (!me) return;
    $("me-name").textContent = me.name;
    $("me-addr").textContent = me.listen_addr;
    const avatar = $("me-avatar");
    avatar.textContent = initials(me.name);
    avatar.style.setProperty("--avatar", "linear-gradient(135deg, #7b61ff, #28c8f0)");
  }

  function initials(name) {
    const words = name.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (!words.length) return "?";
    if (words.length === 1) return words[0].slice(0, 2).toUpperCase();
    return (words[0][0] + words[1][0]).toUpperCase();
  }

  function renderPeers(list) {
    $("peer-count").textContent = String(list.length);
    $("peer-empty").hidden = list.length > 0;
    const host = $("peer-list");
    const seen = new Set();
    list.forEach((peer, index) => {
      seen.add(peer.peer_id);
      let item = peers.get(peer.peer_id);
      if (!item) {
        item = makePeer(peer.peer_id);
        peers.set(peer.peer_id, item);
      }
      updatePeer(item, peer);
      if (host.children[index] !== item.root) host.insertBefore(item.root, host.children[index] || null);
    });
    for (const [id, item] of peers) {
      if (!seen.has(id)) { item.root.remove(); peers.delete(id); }
    }
  }

  function makePeer(peerId) {
    const root = el("li", "peer");
    root.dataset.peer = peerId;
    const row = el("button", "peer-row");
    row.type = "button";
    const avatar = el("span", "avatar");
    const text = el("div", "peer-text");
    const name = el("div", "peer-name");
    const addr = el("div", "peer-addr");
    const sub = el("div", "peer-sub");
    const rate = el("div", "peer-rate");
    text.append(name, addr, sub, rate);
    row.append(avatar, text);
    const games = el("div", "peer-games");
    root.append(row, games);
    row.addEventListener("click", () => {
      if (state.openPeers.has(peerId)) state.openPeers.delete(peerId);
      else state.openPeers.add(peerId);
      if (state.view) renderPeers(state.view.peers);
    });
    return { root, avatar, name, addr, sub, rate, games, key: "" };
  }

  function updatePeer(item, peer) {
    item.avatar.textContent = peer.initials;
    item.avatar.style.setProperty("--avatar", peer.color);
    item.name.textContent = peer.name;
    item.addr.textContent = peer.addr;
    item.sub.textContent = peer.games_label;
    item.rate.textContent = peer.rate_label;
    item.rate.hidden = !peer.rate_label;
    const open = state.openPeers.has(peer.peer_id);
    item.root.classList.toggle("is-open", open);
    item.games.hidden = !open || peer.games.length === 0;
    const key = peer.games.join("\n");
    if (key !== item.key) {
      item.key = key;
      item.games.replaceChildren(...peer.games.map((name) => el("span", "chip", name)));
    }
  }

  function renderGrid(games) {
    const grid = $("grid");
    const seen = new Set();
    games.forEach((game, index) => {
      seen.add(game.id);
      let card = cards.get(game.id);
      if (!card) {
        card = makeCard(game.id);
        cards.set(game.id, card);
      }
      updateCard(card, game);
      if (grid.children[index] !== card.root) grid.insertBefore(card.root, grid.children[index] || null);
    });
    for (const [id, card] of cards) {
      if (!seen.has(id)) { card.root.remove(); cards.delete(id); }
    }
  }

  function makeCard(gameId) {
    const root = el("article", "card");
    root.dataset.game = gameId;
    root.tabIndex = 0;
    const art = el("div", "art");
    const pattern = el("div", "art-pattern");
    const mono = el("span", "mono");
    const cover = el("img", "cover");
    cover.alt = "";
    cover.hidden = true;
    cover.addEventListener("error", () => { cover.hidden = true; });
    const pill = el("span", "pill");
    const badge = el("span", "peer-badge");
    const badgeText = el("span");
    badge.append(icon("users"), badgeText);
    art.append(pattern, mono, cover, pill, badge);
    const body = el("div", "card-body");
    const title = el("h3", "card-title");
    const meta = el("p", "card-meta");
    const genre = el("span", "meta-genre");
    const size = el("span", "meta-fact");
    const players = el("span", "meta-fact");
    const playersText = el("span");
    players.append(icon("users"), playersText);
    meta.append(genre, size, players);
    const act = makeActionButton();
    const note = el("p", "card-note");
    const noteText = el("span");
    const noteIcon = icon("clock");
    note.append(noteIcon, noteText);
    const error = el("p", "card-error");
    const errorText = el("span");
    error.append(icon("alert"), errorText);
    body.append(title, meta, act.button, note, error);
    root.append(art, body);
    root.addEventListener("click", () => openDetail(gameId));
    root.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === root) openDetail(gameId);
    });
    act.button.addEventListener("click", (event) => {
      event.stopPropagation();
      runAction(act, gameId);
    });
    return {
      root, art, mono, cover, pill, badge, badgeText, title, genre, size, playersText, act, note, noteText,
      noteIcon, error, errorText,
    };
  }

  function paintArt(art, mono, cover, artwork) {
    art.style.setProperty("--a", artwork.color_a);
    art.style.setProperty("--b", artwork.color_b);
    art.style.setProperty("--angle", `${artwork.angle}deg`);
    for (let i = 0; i < 4; i += 1) art.classList.toggle(`p${i}`, artwork.pattern === i);
    mono.textContent = artwork.monogram;
    if (artwork.cover_url) {
      if (cover.getAttribute("src") !== artwork.cover_url) {
        cover.hidden = false;
        cover.src = artwork.cover_url;
      }
    } else {
      cover.hidden = true;
      cover.removeAttribute("src");
    }
  }

  function paintPill(pill, status, always) {
    pill.className = `pill tone-${status.tone}`;
    pill.textContent = status.label;
    pill.title = status.reason || "";
    pill.hidden = status.tone === "none" && !always;
  }

  function updateCard(card, game) {
    card.game = game;
    paintArt(card.art, card.mono, card.cover, game.art);
    paintPill(card.pill, game.status);
    card.badgeText.textContent = game.peers_label;
    card.badge.hidden = game.peer_count === 0;
    card.root.classList.toggle("is-unavailable", game.action.kind === "unavailable");
    card.title.textContent = game.name;
    card.title.title = game.name;
    card.genre.textContent = game.genre;
    card.size.textContent = game.size_label;
    card.playersText.textContent = String(game.max_players);
    card.playersText.parentElement.title = game.players_label;
    paintAction(card.act, game.action);
    card.note.hidden = !game.note;
    card.noteText.textContent = game.note || "";
    const noteIcon = game.action.kind === "found" ? "folder" : "clock";
    if (card.noteIcon.dataset.icon !== noteIcon) {
      const fresh = icon(noteIcon);
      card.noteIcon.replaceWith(fresh);
      card.noteIcon = fresh;
    }
    card.error.hidden = !game.error;
    card.errorText.textContent = game.error || "";
  }

  function makeActionButton(extraClass) {
    const button = el("button", "act");
    button.type = "button";
    const slot = el("span", "act-icon");
    const label = el("span", "act-label");
    const detail = el("span", "act-detail");
    button.append(slot, label, detail);
    return { button, slot, label, detail, extraClass: extraClass || "", kind: "", sending: false };
  }

  function paintAction(act, action) {
    const cls = `act act-${action.kind}${act.extraClass ? " " + act.extraClass : ""}${act.sending ? " is-sending" : ""}`;
    if (act.button.className !== cls) act.button.className = cls;
    if (act.kind !== action.kind + String(action.busy)) {
      act.kind = action.kind + String(action.busy);
      let mark;
      if (action.busy) mark = el("span", "spinner");
      else if (action.kind === "running") mark = el("span", "live-dot");
      else mark = icon(ACTION_ICONS[action.kind] || "check");
      act.slot.replaceChildren(mark);
    }
    act.label.textContent = action.label;
    act.detail.textContent = action.detail || "";
    act.detail.hidden = !action.detail;
    act.button.style.setProperty("--fill", `${action.percent == null ? 0 : action.percent}%`);
    act.button.disabled = !action.command || act.sending;
    act.button.dataset.kind = action.kind;
    act.command = action.command;
  }

  async function runAction(act, gameId) {
    if (!act.command || act.sending) return;
    act.sending = true;
    act.button.classList.add("is-sending");
    act.button.disabled = true;
    try {
      await sendCommand(act.command, gameId);
    } finally {
      act.sending = false;
      act.button.classList.remove("is-sending");
      const game = findGame(gameId);
      if (game) paintAction(act, game.action);
    }
  }

  function findGame(gameId) {
    if (!state.view) return null;
    return state.view.games.find((game) => game.id === gameId) || null;
  }

  // -- search and filters ------------------------------------------------------------------

  function matchesFilter(game) {
    switch (state.filter) {
      case "installed": return game.installed;
      case "downloadable": return game.downloadable;
      case "updates": return game.update;
      default: return true;
    }
  }

  function applyFilters() {
    if (!state.view) return;
    const words = state.query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards.values()) {
      const game = card.game;
      const visible = matchesFilter(game) && words.every((word) => game.search.includes(word));
      card.root.hidden = !visible;
      if (visible) shown += 1;
    }
    $("empty").hidden = shown > 0;
    $("view-title").textContent = FILTER_TITLES[state.filter];
    const online = state.view.peers.length;
    $("view-subtitle").textContent =
      `${shown} ${shown === 1 ? "game" : "games"} · ${online} ${online === 1 ? "player" : "players"} online`;
    document.querySelectorAll(".filter").forEach((button) => {
      button.classList.toggle("is-active", button.dataset.filter === state.filter);
    });
  }

  // -- detail view ---------------------------------------------------------------------------

  const detail = {
    act: null, secondaryKey: "", sourcesKey: "",
  };

  function openDetail(gameId) {
    state.detail = gameId;
    state.verify = null;
    $("detail").hidden = false;
    detail.secondaryKey = "";
    detail.sourcesKey = "";
    renderDetail();
    $("detail-close").focus();
  }

  function closeDetail() {
    state.detail = null;
    state.verify = null;
    $("detail").hidden = true;
  }

  function renderDetail() {
    const game = findGame(state.detail);
    if (!game) return closeDetail();
    paintArt($("detail-art"), $("detail-mono"), $("detail-cover"), game.art);
    paintPill($("detail-status"), game.status, true);
    $("detail-title").textContent = game.name;
    $("detail-genre").textContent = game.genre;
    $("detail-size").textContent = game.size_label;
    $("detail-players").textContent = game.players_label.replace(/^Up to /, "");
    $("detail-peers").textContent = game.peers_label;
    $("detail-version").textContent = game.version_label;
    $("detail-description").textContent = game.description;
    $("detail-description").hidden = !game.description;
    paintAction(detail.act, game.action);
    detail.act.button.hidden = Boolean(game.progress);
    $("detail-note").hidden = !game.note;
    $("detail-note").textContent = game.note || "";
    $("detail-error").hidden = !game.error;
    $("detail-error").textContent = game.error || "";
    $("detail-explanation").hidden = !game.explanation;
    $("detail-explanation").textContent = game.explanation || "";
    $("detail-distrust").hidden = !game.distrust_note;
    $("detail-distrust").textContent = game.distrust_note || "";
    // A result is about the files as they were: an operation or an uninstall outdates it.
    if (state.verify && (game.action.busy || !game.installed)) state.verify = null;
    renderProgress(game.progress);
    renderSecondary(game);
    renderVerify(game);
    renderSources(game.sources);
  }

  function renderProgress(progress) {
    $("detail-progress").hidden = !progress;
    if (!progress) return;
    $("progress-percent").textContent = progress.percent_label;
    $("progress-done").textContent = progress.done_label;
    $("progress-fill").style.setProperty("--fill", `${progress.percent}%`);
    $("progress-speed").textContent = progress.speed_label || "";
    $("progress-speed").parentElement.hidden = !progress.speed_label;
    $("progress-eta").textContent = progress.eta_label ? `${progress.eta_label} left` : "Estimating…";
    $("progress-eta").parentElement.hidden = progress.kind !== "download";
    $("progress-cancel").hidden = !progress.can_cancel;
  }

  function renderSecondary(game) {
    const actions = game.actions.filter((action) => !(action.id === "cancel" && game.progress));
    const key = actions.map((action) => action.id).join(",");
    if (key === detail.secondaryKey) return;
    detail.secondaryKey = key;
    $("detail-secondary").replaceChildren(...actions.map((action) => {
      const button = el("button", `btn btn-ghost${action.danger ? " btn-danger" : ""}`);
      button.type = "button";
      button.dataset.action = action.id;
      if (action.aria_label) button.setAttribute("aria-label", action.aria_label);
      button.append(icon(SECONDARY_ICONS[action.id] || "check"), el("span", "", action.label));
      button.addEventListener("click", () => runSecondary(game.id, action));
      return button;
    }));
  }

  function runSecondary(gameId, action) {
    if (action.id === "view-files") return openFolder(gameId);
    if (action.id === "verify") return runVerify(gameId);
    if (action.id === "uninstall") return askUninstall(gameId);
    if (!action.command) return undefined;
    if (action.confirm) {
      return askConfirm(action.label, action.confirm, () => sendCommand(action.command, gameId));
    }
    return sendCommand(action.command, gameId);
  }

  function renderSources(sources) {
    const key = JSON.stringify(sources);
    if (key === detail.sourcesKey) return;
    detail.sourcesKey = key;
    const list = $("detail-sources");
    if (!sources.length) {
      list.replaceChildren(el("li", "none", "No peer on the network has this game right now."));
      return;
    }
    list.replaceChildren(...sources.map((source) => {
      const row = el("li", `source${source.ready ? "" : " not-ready"}`);
      const avatar = el("span", "avatar", source.initials);
      avatar.style.setProperty("--avatar", source.color);
      const text = el("div", "peer-text");
      text.append(el("div", "peer-name", source.name), el("div", "peer-addr", source.addr));
      const have = el("span", "source-have", source.have_label);
      have.style.setProperty("--have", `${source.have_percent}%`);
      row.append(avatar, text, have, el("span", "source-version", source.version_label));
      return row;
    }));
  }

  // -- verify and repair ----------------------------------------------------------------------

  async function runVerify(gameId) {
    state.verify = { game: gameId, checking: true };
    renderDetail();
    const reply = await post(`/api/games/${encodeURIComponent(gameId)}/verify`);
    if (state.detail !== gameId || !state.verify || state.verify.game !== gameId) return;
    if (!reply.ok) {
      state.verify = null;
      toast(reply.error.message);
    } else {
      state.verify = reply.data;
    }
    renderDetail();
  }

  function fillFiles(list, files) {
    const rows = files.paths.map((path) => el("li", "", path));
    if (files.more_label) rows.push(el("li", "more", files.more_label));
    list.replaceChildren(...rows);
  }

  function renderVerify(game) {
    const result = state.verify;
    const panel = $("detail-verify");
    panel.hidden = !result || result.game !== game.id;
    const verifyButton = document.querySelector('#detail-secondary [data-action="verify"]');
    if (verifyButton) verifyButton.disabled = Boolean(result && result.checking);
    if (panel.hidden) return;
    if (result.checking) {
      panel.dataset.tone = "busy";
      $("verify-headline").textContent = "Checking every game file…";
      for (const id of ["verify-changed-group", "verify-missing-group", "verify-players", "verify-note", "verify-repair"]) {
        $(id).hidden = true;
      }
      return;
    }
    panel.dataset.tone = result.tone;
    $("verify-headline").textContent = result.headline;
    $("verify-changed-group").hidden = !result.changed_title;
    $("verify-changed-title").textContent = result.changed_title || "";
    fillFiles($("verify-changed"), result.changed);
    $("verify-missing-group").hidden = !result.missing_title;
    $("verify-missing-title").textContent = result.missing_title || "";
    fillFiles($("verify-missing"), result.missing);
    $("verify-players").hidden = !result.players_label;
    $("verify-players").textContent = result.players_label || "";
    $("verify-note").hidden = !result.repair_note;
    $("verify-note").textContent = result.repair_note || "";
    const repair = $("verify-repair");
    repair.hidden = !result.can_repair;
    repair.setAttribute("aria-label", result.repair_aria_label);
    $("verify-repair-label").textContent = result.repair_label;
  }

  function askRepair() {
    const result = state.verify;
    if (!result || !result.can_repair) return;
    const gameId = result.game;
    askConfirm(result.repair_label, result.repair_confirm, () => {
      state.verify = null;
      renderDetail();
      sendCommand("repair", gameId);
    }, result.repair_title);
  }

  // -- dialogs ---------------------------------------------------------------------------------

  function askConfirm(label, text, onYes, title) {
    $("confirm-title").textContent = title || `${label}?`;
    $("confirm-text").textContent = text;
    $("confirm-yes").textContent = label;
    $("confirm-plan").hidden = true;
    state.confirmAction = onYes;
    $("confirm").hidden = false;
    $("confirm-no").focus();
  }

  async function askUninstall(gameId) {
    // The plan reads every game file: say so on the button while it comes.
    const button = document.querySelector('#detail-secondary [data-action="uninstall"]');
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    let reply;
    try {
      reply = await post(`/api/games/${encodeURIComponent(gameId)}/uninstall-plan`);
    } finally {
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    }
    if (state.detail !== gameId) return undefined;
    if (!reply.ok) return toast(reply.error.message);
    const plan = reply.data;
    askConfirm(plan.confirm_label, plan.text, () => {
      const keep = plan.keep_offered && $("confirm-keep").checked;
      sendCommand("uninstall", gameId, { keep_saves: keep });
    }, plan.title);
    const keep = $("confirm-keep");
    const deletes = () => {
      $("confirm-deletes").textContent =
        plan.keep_offered && keep.checked ? plan.keep_delete_label : plan.delete_label;
    };
    keep.checked = plan.keep_default;
    keep.onchange = deletes;
    keep.setAttribute("aria-label", plan.keep_aria_label);
    $("confirm-keep-label").textContent = plan.keep_label;
    $("confirm-keep-row").hidden = !plan.keep_offered;
    $("confirm-players-group").hidden = !plan.players_title;
    $("confirm-players-title").textContent = plan.players_title || "";
    fillFiles($("confirm-players"), plan.players);
    deletes();
    $("confirm-plan").hidden = false;
    return undefined;
  }

  function closeConfirm() {
    state.confirmAction = null;
    $("confirm").hidden = true;
  }

  function openSettings() {
    const me = state.view && state.view.me;
    $("settings-name").value = me ? me.name : "";
    $("settings-dir").value = me ? me.game_dir : "";
    const transfer = state.view && state.view.transfer;
    $("settings-upload-limit").value = transfer ? String(transfer.upload_limit_mib) : "";
    $("settings-gaming-cap").value = transfer ? String(transfer.gaming_cap_mib) : "";
    $("settings-error").hidden = true;
    $("settings").hidden = false;
    $("settings-name").focus();
  }

  // MiB/s typed in the form, as the bytes a second the API takes ("" leaves it as it is).
  function bytesPerSecond(input) {
    const text = input.value.trim();
    if (text === "") return undefined;
    const value = Number(text);
    return Number.isFinite(value) ? Math.round(value * 1024 * 1024) : -1;
  }

  async function submitSettings(form, nameInput, dirInput, errorBox, submit, limits) {
    errorBox.hidden = true;
    submit.disabled = true;
    try {
      const body = { display_name: nameInput.value.trim(), game_dir: dirInput.value.trim() };
      if (limits) {
        const upload = bytesPerSecond(limits.upload);
        const gaming = bytesPerSecond(limits.gaming);
        if (upload !== undefined) body.upload_limit = upload;
        if (gaming !== undefined) body.gaming_upload_cap = gaming;
      }
      const reply = await post("/api/settings", body);
      if (!reply.ok) {
        errorBox.textContent = reply.error.message;
        errorBox.hidden = false;
        return false;
      }
      return true;
    } finally {
      submit.disabled = false;
    }
  }

  let toastCount = 0;
  function toast(message, kind, title, ms) {
    const node = el("div", `toast${kind ? " " + kind : ""}`);
    const body = el("span", "toast-body");
    if (title) body.append(el("strong", "toast-title", title));
    body.append(el("span", "toast-text", message));
    node.append(icon(kind === "ok" ? "check" : "alert"), body);
    node.dataset.toast = String(++toastCount);
    $("toasts").append(node);
    setTimeout(() => node.remove(), ms || TOAST_MS);
  }

  // Where multicast is blocked, one peer's address is enough: it names the others.
  async function connectTo(event) {
    event.preventDefault();
    const field = $("peer-connect-addr");
    const addr = field.value.trim();
    if (!addr) return;
    $("peer-connect-submit").disabled = true;
    const reply = await sendCommand("connect", undefined, { addr });
    $("peer-connect-submit").disabled = false;
    if (reply.ok) {
      field.value = "";
      toast(`${reply.data.name} at ${reply.data.addr}`, "ok", "Connected");
    }
  }

  // -- wiring ------------------------------------------------------------------------------------

  function wire() {
    detail.act = makeActionButton("act-wide");
    $("detail-action").replaceWith(detail.act.button);
    detail.act.button.id = "detail-action";
    detail.act.button.addEventListener("click", () => {
      if (state.detail) runAction(detail.act, state.detail);
    });
    $("progress-cancel").addEventListener("click", () => {
      if (state.detail) sendCommand("cancel", state.detail);
    });
    $("detail-close").addEventListener("click", closeDetail);
    $("peer-connect").addEventListener("submit", connectTo);
    $("verify-repair").addEventListener("click", askRepair);
    $("detail").addEventListener("click", (event) => { if (event.target === $("detail")) closeDetail(); });
    $("confirm-no").addEventListener("click", closeConfirm);
    $("confirm-yes").addEventListener("click", () => {
      const action = state.confirmAction;
      closeConfirm();
      if (action) action();
    });
    $("confirm").addEventListener("click", (event) => { if (event.target === $("confirm")) closeConfirm(); });
    $("open-settings").addEventListener("click", openSettings);
    $("settings-cancel").addEventListener("click", () => { $("settings").hidden = true; });
    $("settings-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const saved = await submitSettings(
        $("settings-form"), $("settings-name"), $("settings-dir"), $("settings-error"), $("settings-save"),
        { upload: $("settings-upload-limit"), gaming: $("settings-gaming-cap") },
      );
      if (saved) { $("settings").hidden = true; toast("Settings saved", "ok"); }
    });
    $("setup-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      await submitSettings(
        $("setup-form"), $("setup-name"), $("setup-dir"), $("setup-error"), $("setup-submit"),
      );
    });
    $("banner-restart").addEventListener("click", async () => {
      const reply = await post("/api/restart");
      if (!reply.ok) toast(reply.error.message);
    });
    document.querySelectorAll(".filter").forEach((button) => {
      button.addEventListener("click", () => { state.filter = button.dataset.filter; applyFilters(); });
    });
    $("search").addEventListener("input", (event) => { state.query = event.target.value; applyFilters(); });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      if (!$("confirm").hidden) closeConfirm();
      else if (!$("settings").hidden) $("settings").hidden = true;
      else if (!$("detail").hidden) closeDetail();
    });
  }

  async function boot() {
    fillIcons(document);
    wire();
    const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    if (match) {
      history.replaceState(null, "", location.pathname);
      const reply = await post("/api/session", { token: match[1] });
      if (!reply.ok) return lock();
    }
    connect();
    return undefined;
  }

  boot();
})();

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
    crosshair: svg('<circle cx="12" cy="12" r="8"/><circle cx="12" cy="12" r="2.5"/><path d="M12 1.5v5M12 17.5v5M1.5 12h5M17.5 12h5"/>'),
    sword: svg('<path d="M14.5 3H21v6.5L9.5 21 3 14.5z"/><path d="m6 12 6 6"/><path d="m16 8-8 8"/>'),
    flag: svg('<path d="M5 21V4"/><path d="M5 4h13l-2.5 4.5L18 13H5"/>'),
    ball: svg('<circle cx="12" cy="12" r="9"/><path d="M3.5 9.5c5 1.5 12 1.5 17 0M3.5 14.5c5-1.5 12-1.5 17 0"/><path d="M12 3c-3 5-3 13 0 18"/>'),
    tower: svg('<path d="M6 21V9h12v12"/><path d="M4 21h16"/><path d="M6 9V4h2.5v2h2V4h3v2h2V4H18v5"/><path d="M10.5 21v-4a1.5 1.5 0 0 1 3 0v4"/>'),
    gear: svg('<circle cx="12" cy="12" r="3.5"/><path d="M12 2.5v3M12 18.5v3M2.5 12h3M18.5 12h3M5.3 5.3l2.1 2.1M16.6 16.6l2.1 2.1M5.3 18.7l2.1-2.1M16.6 7.4l2.1-2.1"/>'),
    cube: svg('<path d="M12 2.5 3.5 7v10l8.5 4.5 8.5-4.5V7z"/><path d="m3.5 7 8.5 4.5L20.5 7"/><path d="M12 11.5v10"/>'),
    controller: svg('<path d="M7 7h10a5 5 0 0 1 4.8 6.3l-1 3.6a2.6 2.6 0 0 1-4.4 1.1L14 15.5h-4L7.6 18a2.6 2.6 0 0 1-4.4-1.1l-1-3.6A5 5 0 0 1 7 7z"/><path d="M7.5 10v4M5.5 12h4"/><path d="M15.5 11h.01M17.5 13h.01"/>'),
    pause: svg('<rect x="6" y="5" width="4" height="14" rx="1"/><rect x="14" y="5" width="4" height="14" rx="1"/>'),
    up: svg('<path d="m6 15 6-6 6 6"/>'),
    down: svg('<path d="m6 9 6 6 6-6"/>'),
    repair: svg('<path d="M14.7 6.3a4 4 0 0 0-5.4 5.2L3.5 17.3a1.8 1.8 0 0 0 2.6 2.6l5.8-5.8a4 4 0 0 0 5.2-5.4l-2.6 2.6-2.4-.6-.6-2.4z"/>'),
  };
  const ACTION_ICONS = {
    download: "download", paused: "download", failed: "update", install: "install", play: "play",
    update: "update", installed: "check", unavailable: "off", found: "folder",
  };
  const SECONDARY_ICONS = {
    cancel: "close", discard: "trash", uninstall: "uninstall", remove: "trash",
    "view-files": "folder", adopt: "check", play: "play", install: "install", update: "update", verify: "shield",
  };
  const FILTER_TITLES = {
    all: "All games", installed: "Installed", downloadable: "Downloadable", updates: "Updates",
  };
  const RECONNECT_FIRST_MS = 250;
  const RECONNECT_MAX_MS = 4000;
  const TOAST_MS = 6000;
  // A notice names files: give the player time to read it.
  const NOTICE_TOAST_MS = 12000;
  // An adopt that found differences names the first few files; the list can be long.
  const ADOPT_DIFFERS_SHOWN = 4;
  const ADOPT_TOAST_MS = 15000;
  const NOTICE_KEY = "lanspread.notice";
  // A dropped stream usually comes back within a second (a restart of the page's
  // server): only a longer silence blocks the page with the reconnecting screen.
  const OFFLINE_GRACE_MS = 1200;
  const SORT_KEY = "lanspread.sort";
  const SORTS = ["availability", "name", "size", "played"];

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
    sort: "availability",
    orderStale: false,
    offlineTimer: null,
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
    if (!reply.ok && reply.error.code === "program-changed") askProgramChanged(game, reply.error.message);
    else if (!reply.ok) toast(reply.error.message);
    return reply;
  }

  // Play of a version the organizer did not pin, whose program changed since the last
  // play: the runtime's question; a yes starts it (and the runtime remembers it).
  function askProgramChanged(gameId, question) {
    const run = () => sendCommand("play", gameId, { run_unpinned: true });
    askConfirm("Run it", question, run, "Not pinned by the organizer");
  }

  async function openFolder(game) {
    const reply = await post(`/api/games/${encodeURIComponent(game)}/open-folder`);
    if (!reply.ok) return toast(reply.error.message);
    // No file manager here: the path to copy, long enough on screen to copy it.
    if (!reply.data.opened) toast(reply.data.message, "info", "View files", NOTICE_TOAST_MS);
    return undefined;
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
        setOffline(false);
        setConn("live", "Live");
        document.body.dataset.seq = String(data.seq);
        render(data.view);
      }
    };
    socket.onclose = () => {
      if (state.socket !== socket) return;
      state.socket = null;
      setConn("reconnecting", "Reconnecting");
      setOffline(true);
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
    setOffline(false);
    if (state.socket) { state.socket.onclose = null; state.socket.close(); }
    showScreen("refused");
  }

  function showScreen(name) {
    for (const id of ["boot", "refused", "setup", "app"]) $(id).hidden = id !== name;
    if (name !== "app") {
      for (const id of ["detail", "confirm", "settings", "picker", "downloads"]) $(id).hidden = true;
      dialogs.length = 0;
      syncModality();
    }
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
    renderGuidance(view.guidance);
    renderGrid(view.games);
    applyFilters();
    if (state.detail) renderDetail();
    renderNotices(view.notices || []);
    document.dispatchEvent(new CustomEvent("lanspread:view", { detail: view }));
  }

  function renderNotices(notices) {
    const newest = notices.reduce((top, notice) => Math.max(top, notice.id), 0);
    if (state.noticeSeen === null) state.noticeSeen = newest;
    // A restarted lanspread counts from 1 again: forget the old count.
    if (newest < state.noticeSeen) state.noticeSeen = 0;
    for (const notice of notices) {
      if (notice.id <= state.noticeSeen) continue;
      toast(notice.text, notice.kind || "ok", notice.title, NOTICE_TOAST_MS);
      document.dispatchEvent(new CustomEvent("lanspread:notice", { detail: notice }));
    }
    state.noticeSeen = Math.max(state.noticeSeen, newest);
    sessionStorage.setItem(NOTICE_KEY, String(state.noticeSeen));
  }

  function renderBanner(runtime) {
    const show = runtime.state !== "running";
    // No peer runs: the library cannot be acted on until it does (Settings and Restart can).
    for (const id of ["grid", "filters", "search-box", "sort-box"]) $(id).inert = show;
    $("app").dataset.runtime = runtime.state;
    if (show) setConn("stopped", runtime.state === "starting" ? "Starting" : "Peer stopped");
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
    if (!me) { $("me-addr").textContent = "Not running"; return; }
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
    const demo = el("div", "peer-demo");
    text.append(name, demo, addr, sub, rate);
    row.append(avatar, text);
    const games = el("div", "peer-games");
    root.append(row, games);
    row.addEventListener("click", () => {
      if (state.openPeers.has(peerId)) state.openPeers.delete(peerId);
      else state.openPeers.add(peerId);
      if (state.view) renderPeers(state.view.peers);
    });
    return { root, row, avatar, name, addr, sub, rate, games, demo, key: "" };
  }

  function updatePeer(item, peer) {
    item.avatar.textContent = peer.initials;
    item.avatar.style.setProperty("--avatar", peer.color);
    item.name.textContent = peer.name;
    item.addr.textContent = peer.addr;
    item.sub.textContent = peer.games_label;
    item.rate.textContent = peer.rate_label;
    item.rate.hidden = !peer.rate_label;
    item.demo.textContent = peer.demo_label || "";
    item.demo.hidden = !peer.demo_label;
    const open = state.openPeers.has(peer.peer_id);
    item.root.classList.toggle("is-open", open);
    item.row.setAttribute("aria-expanded", String(open && peer.games.length > 0));
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
    let added = false;
    for (const game of games) {
      seen.add(game.id);
      let card = cards.get(game.id);
      if (!card) {
        card = makeCard(game.id);
        cards.set(game.id, card);
        grid.append(card.root);
        added = true;
      }
      updateCard(card, game);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) { card.root.remove(); cards.delete(id); }
    }
    placeCards(added);
  }

  // -- sorting: a stable order ----------------------------------------------------------
  // Cards never move under the player's pointer or focus: a state change that would move
  // one waits until the pointer and the focus have left the grid and no dialog is open.

  const BY_NAME = (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || a.id.localeCompare(b.id);
  const COMPARE = {
    availability: (a, b) => a.shelf - b.shelf || BY_NAME(a, b),
    name: BY_NAME,
    size: (a, b) => b.size_bytes - a.size_bytes || BY_NAME(a, b),
    played: (a, b) => (b.last_played || 0) - (a.last_played || 0) || BY_NAME(a, b),
  };

  function storedSort() {
    const stored = localStorage.getItem(SORT_KEY);
    return SORTS.includes(stored) ? stored : "availability";
  }

  function gridBusy() {
    const grid = $("grid");
    const active = document.activeElement;
    const keyboardIn = grid.contains(active) && active.matches(":focus-visible");
    return grid.matches(":hover") || keyboardIn || dialogs.length > 0;
  }

  function placeCards(force) {
    if (!force && gridBusy()) { state.orderStale = true; return; }
    state.orderStale = false;
    const grid = $("grid");
    const ordered = [...cards.values()].sort((a, b) => COMPARE[state.sort](a.game, b.game));
    ordered.forEach((card, index) => {
      if (grid.children[index] !== card.root) grid.insertBefore(card.root, grid.children[index] || null);
    });
  }

  function settleOrder() {
    if (state.orderStale) placeCards(false);
  }

  function chooseSort(sort) {
    state.sort = SORTS.includes(sort) ? sort : "availability";
    localStorage.setItem(SORT_KEY, state.sort);
    $("sort").value = state.sort;
    placeCards(true);
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
    const launchTag = el("span", "launch-tag");
    launchTag.hidden = true;
    art.append(launchTag);
    meta.append(genre, size, players);
    const act = makeActionButton();
    const note = el("p", "card-note");
    const noteText = el("span");
    const noteIcon = icon("clock");
    note.append(noteIcon, noteText);
    const error = el("p", "card-error");
    const errorText = el("span");
    error.append(icon("alert"), errorText);
    // A note or an error sits above the button, clamped: every button of a row stays in line.
    body.append(title, meta, note, error, act.button);
    const emblem = el("span", "emblem");
    art.append(emblem);
    root.append(art, body);
    root.addEventListener("click", () => openDetail(gameId));
    root.addEventListener("keydown", (event) => {
      if (event.target !== root || (event.key !== "Enter" && event.key !== " ")) return;
      // Taken here, the key press ends: it cannot also press a button of the dialog.
      event.preventDefault();
      openDetail(gameId);
    });
    act.button.addEventListener("click", (event) => {
      event.stopPropagation();
      runAction(act, gameId);
    });
    return {
      root, art, mono, cover, pill, badge, badgeText, title, genre, size, playersText, act, note, noteText,
      noteIcon, error, errorText, emblem, launchTag,
    };
  }

  function paintArt(art, mono, cover, artwork) {
    art.style.setProperty("--a", artwork.color_a);
    art.style.setProperty("--b", artwork.color_b);
    art.style.setProperty("--angle", `${artwork.angle}deg`);
    for (let i = 0; i < 8; i += 1) art.classList.toggle(`p${i}`, artwork.pattern === i);
    // Generated art draws the genre's emblem, not letters (two games' letters can repeat).
    mono.textContent = "";
    const emblem = art.querySelector(".emblem");
    if (emblem && emblem.dataset.icon !== artwork.emblem) {
      emblem.dataset.icon = artwork.emblem;
      emblem.innerHTML = ICONS[artwork.emblem] || ICONS.controller;
    }
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
    card.root.setAttribute("aria-label", `${game.name}, ${game.status.label}`);
    card.title.textContent = game.name;
    card.title.title = game.name;
    card.genre.textContent = game.genre;
    card.size.textContent = game.size_label;
    card.size.title = game.size_caption;
    card.playersText.textContent = String(game.max_players);
    card.playersText.parentElement.title = game.players_label;
    paintAction(card.act, game.action);
    card.note.hidden = !game.note;
    card.noteText.textContent = game.note || "";
    card.note.title = game.note || "";
    const noteIcon = game.action.kind === "found" ? "folder" : "clock";
    if (card.noteIcon.dataset.icon !== noteIcon) {
      const fresh = icon(noteIcon);
      card.noteIcon.replaceWith(fresh);
      card.noteIcon = fresh;
    }
    card.error.hidden = !game.error;
    card.errorText.textContent = game.error || "";
    card.error.title = game.error || "";
    paintLaunch(card, game);
  }

  // -- launching: where a game cannot start, and how long it was played ---------------------

  function paintLaunch(card, game) {
    card.launchTag.hidden = !game.launch_label;
    card.launchTag.textContent = game.launch_label || "";
    card.launchTag.title = game.launch_problem || "";
  }

  function playedText(game) {
    if (!game.play_label) return "";
    const when = new Date(game.last_played * 1000).toLocaleDateString(undefined, {
      year: "numeric", month: "short", day: "numeric",
    });
    return `${game.play_label.replace(/^Played /, "")} · last ${when}`;
  }

  function renderLaunch(game) {
    $("detail-launch").hidden = !game.launch_problem;
    $("detail-launch").textContent = game.launch_problem ? `${game.launch_problem}.` : "";
    $("detail-played-row").hidden = !game.play_label;
    $("detail-played").textContent = playedText(game);
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
    if (action.aria_label) act.button.setAttribute("aria-label", action.aria_label);
    act.command = action.command;
  }

  async function runAction(act, gameId) {
    if (!act.command || act.sending) return;
    const wanted = findGame(gameId);
    if (wanted && wanted.action.confirm && wanted.action.command === act.command) {
      const command = act.command;
      askConfirm(wanted.action.confirm_label, wanted.action.confirm, () => sendCommand(command, gameId),
        `Download ${wanted.name}?`);
      return;
    }
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
      const active = button.dataset.filter === state.filter;
      button.classList.toggle("is-active", active);
      button.setAttribute("aria-pressed", String(active));
    });
  }

  // -- detail view ---------------------------------------------------------------------------

  const detail = {
    act: null, secondaryKey: "", sourcesKey: "",
  };

  function openDetail(gameId) {
    state.detail = gameId;
    state.verify = null;
    detail.secondaryKey = "";
    detail.sourcesKey = "";
    openDialog("detail");
    renderDetail();
  }

  function closeDetail() {
    state.detail = null;
    state.verify = null;
    closeDialog("detail");
  }

  function renderDetail() {
    const game = findGame(state.detail);
    if (!game) return closeDetail();
    paintArt($("detail-art"), $("detail-mono"), $("detail-cover"), game.art);
    paintPill($("detail-status"), game.status, true);
    $("detail-title").textContent = game.name;
    $("detail-close").setAttribute("aria-label", `Close ${game.name}`);
    $("detail-genre").textContent = game.genre;
    $("detail-size").textContent = game.size_label;
    $("detail-size-title").textContent = game.size_caption;
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
    renderLaunch(game);
    renderProgress(game.progress);
    renderSecondary(game);
    renderVerify(game);
    renderSources(game.sources);
    renderConflict(game);
    keepFocusInDetail();
  }

  // A control that had the focus may vanish with a state change (Cancel once the
  // download ends): the focus goes back to the dialog, never to the page behind it.
  function keepFocusInDetail() {
    const top = dialogs.length ? dialogs[dialogs.length - 1].id : null;
    if (top !== "detail" || document.body.dataset.offline === "true") return;
    const active = document.activeElement;
    if (!active || active === document.body || !active.isConnected || active.closest("[hidden]")) {
      $("detail").querySelector(".modal").focus();
    }
  }

  // Hex characters of a content digest shown to the player (core/conflict.SHORT_DIGEST).
  const SHORT_DIGEST = 12;

  // The peers offering an unpinned version disagree on its content: one row per
  // content, with the peers behind it; the player's pick goes to choose-content,
  // which starts the download again from that side only.
  function renderConflict(game) {
    const panel = $("detail-conflict");
    const conflict = game.conflict;
    const key = conflict ? `${game.id}:${JSON.stringify(conflict)}` : "";
    if (panel.dataset.key === key) return;
    panel.dataset.key = key;
    panel.hidden = !conflict;
    if (!conflict) return panel.replaceChildren();
    const list = el("ul", "conflict-sides");
    list.append(...conflict.sides.map((side) => {
      const trust = el("button", "btn btn-ghost", "Trust this");
      trust.type = "button";
      trust.dataset.digest = side.digest;
      trust.addEventListener("click", () => {
        trust.disabled = true;
        sendCommand("choose-content", game.id, { digest: side.digest });
      });
      const item = el("li", "conflict-side");
      item.append(el("span", "conflict-peers", side.peers_label),
        el("code", "conflict-digest", side.digest.slice(0, SHORT_DIGEST)), trust);
      return item;
    }));
    panel.replaceChildren(el("p", "conflict-headline", conflict.headline), list);
    if (conflict.more_label) panel.append(el("p", "conflict-more", conflict.more_label));
    return undefined;
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
    const game = findGame(state.detail);
    if (game) $("progress-cancel").setAttribute("aria-label", `Cancel the download of ${game.name}`);
  }

  function renderSecondary(game) {
    const actions = game.actions.filter((action) => !(action.id === "cancel" && game.progress));
    const key = actions.map((action) => action.id).join(",");
    if (key === detail.secondaryKey) return;
    detail.secondaryKey = key;
    const focused = $("detail-secondary").contains(document.activeElement) ? document.activeElement.dataset.action : null;
    $("detail-secondary").replaceChildren(...actions.map((action) => {
      const button = el("button", `btn btn-ghost${action.danger ? " btn-danger" : ""}`);
      button.type = "button";
      button.dataset.action = action.id;
      if (action.aria_label) button.setAttribute("aria-label", action.aria_label);
      button.append(icon(SECONDARY_ICONS[action.id] || "check"), el("span", "", action.label));
      button.addEventListener("click", () => runSecondary(game.id, action));
      return button;
    }));
    // The button that had the focus is redrawn: the focus stays on it when it is still there.
    const again = focused && $("detail-secondary").querySelector(`[data-action="${focused}"]`);
    if (again) again.focus();
  }

  function runSecondary(gameId, action) {
    if (action.id === "view-files") return openFolder(gameId);
    if (action.id === "verify") return runVerify(gameId);
    if (action.id === "adopt") return runAdopt(gameId);
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

  // -- adopt a found folder -------------------------------------------------------------------

  // The folder is hashed against the version peers offer; the reply says whether it was
  // adopted (only version.ini is then fetched) or which files differ.
  async function runAdopt(gameId) {
    const reply = await sendCommand("adopt", gameId);
    if (!reply.ok) return;
    const result = reply.data;
    if (result.adopted) {
      toast(`All ${result.compared_files} game files match ${result.version}: fetching version.ini only.`,
        "ok", "Adopting your copy");
      return;
    }
    const shown = result.differs.slice(0, ADOPT_DIFFERS_SHOWN).join("; ");
    const more = result.differs.length > ADOPT_DIFFERS_SHOWN
      ? `; and ${result.differs.length - ADOPT_DIFFERS_SHOWN} more` : "";
    toast(`${shown}${more}. Nothing was changed.`, "", `Not the files of ${result.version}`, ADOPT_TOAST_MS);
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
    openDialog("confirm", $("confirm-no"));
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
    closeDialog("confirm");
  }

  function openSettings() {
    const me = state.view && state.view.me;
    const setup = state.view && state.view.setup;
    $("settings-name").value = me ? me.name : (setup ? setup.display_name : "");
    $("settings-dir").value = me ? me.game_dir : (setup ? setup.game_dir : "");
    const transfer = state.view && state.view.transfer;
    $("settings-upload-limit").value = transfer ? String(transfer.upload_limit_mib) : "";
    $("settings-gaming-cap").value = transfer ? String(transfer.gaming_cap_mib) : "";
    $("settings-error").hidden = true;
    openDialog("settings", $("settings-name"));
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
      return reply.data || true;
    } finally {
      submit.disabled = false;
    }
  }

  // -- the library's guidance: alone on the network, folders that are not games -------------

  function renderGuidance(guidance) {
    $("guidance").hidden = !guidance;
    if (!guidance) return;
    $("guidance-alone").hidden = !guidance.alone_title;
    $("guidance-title").textContent = guidance.alone_title || "";
    $("guidance-text").textContent = guidance.alone_text || "";
    const stepsKey = JSON.stringify(guidance.steps);
    if ($("guidance-steps").dataset.key !== stepsKey) {
      $("guidance-steps").dataset.key = stepsKey;
      $("guidance-steps").replaceChildren(...guidance.steps.map((step) => {
        const item = el("li");
        item.append(el("strong", "", step.title), el("span", "", step.text));
        return item;
      }));
    }
    $("guidance-strays").hidden = !guidance.strays.length;
    $("guidance-strays-title").textContent = guidance.strays_title || "";
    $("guidance-stray-list").replaceChildren(...guidance.strays.map((stray) => {
      const item = el("li");
      item.append(icon("folder"), el("code", "", stray.name), el("span", "", stray.hint));
      return item;
    }));
  }

  // -- the folder picker: the peer lists subfolders and free space ---------------------------

  const picker = { target: null, path: "", parent: null, opener: null };

  async function browse(path) {
    const reply = await post("/api/folders", { path });
    $("picker-error").hidden = reply.ok;
    if (!reply.ok) {
      $("picker-error").textContent = reply.error.message;
      return;
    }
    const folder = reply.data;
    picker.path = folder.path;
    picker.parent = folder.parent;
    $("picker-path").value = folder.path;
    $("picker-free").textContent = folder.free_label;
    $("picker-up").disabled = !folder.parent;
    $("picker-note").hidden = !folder.note;
    $("picker-note").textContent = folder.note || "";
    const items = folder.folders.map((name) => {
      const item = el("li");
      const button = el("button", "picker-folder");
      button.type = "button";
      button.append(icon("folder"), el("span", "", name));
      button.addEventListener("click", () => browse(joinPath(folder.path, name)));
      item.append(button);
      return item;
    });
    if (!items.length) items.push(el("li", "none", "No folders inside. Use this one, or go up."));
    $("picker-list").replaceChildren(...items);
  }

  function joinPath(base, name) {
    const sep = base.includes("\\") && !base.includes("/") ? "\\" : "/";
    return base.endsWith(sep) ? base + name : base + sep + name;
  }

  function openPicker(targetId, opener) {
    picker.target = $(targetId);
    picker.opener = opener;
    browse(picker.target.value.trim());
    openDialog("picker", $("picker-path"));
  }

  function closePicker(use) {
    if (use && picker.target) picker.target.value = picker.path;
    closeDialog("picker");
  }

  function wirePicker() {
    document.querySelectorAll("[data-browse]").forEach((button) => {
      button.addEventListener("click", () => openPicker(button.dataset.browse, button));
    });
    $("picker-go").addEventListener("submit", (event) => { event.preventDefault(); browse($("picker-path").value); });
    $("picker-up").addEventListener("click", () => { if (picker.parent) browse(picker.parent); });
    $("picker-cancel").addEventListener("click", () => closePicker(false));
    $("picker-use").addEventListener("click", () => closePicker(true));
  }

  let toastCount = 0;
  function toast(message, kind, title, ms) {
    const node = el("div", `toast${kind ? " " + kind : ""}`);
    const body = el("span", "toast-body");
    if (title) body.append(el("strong", "toast-title", title));
    body.append(el("span", "toast-text", message));
    node.append(icon(kind === "ok" ? "check" : kind === "info" ? "folder" : "alert"), body);
    node.dataset.toast = String(++toastCount);
    $("toasts").append(node);
    setTimeout(() => node.remove(), ms || TOAST_MS);
  }

  // -- dialogs: focus moves in, stays in, and returns ------------------------------------------
  // Each open dialog remembers what had the focus; everything under the top one is inert,
  // so Tab and screen readers stay inside it, and closing it gives the focus back.

  const dialogs = [];
  const FOCUSABLE = 'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])';

  function openDialog(id, focusTarget) {
    const overlay = $(id);
    if (!dialogs.some((entry) => entry.id === id)) {
      dialogs.push({ id, returnTo: document.activeElement });
    }
    overlay.hidden = false;
    syncModality();
    // The dialog itself takes the focus (its name is read), never one of its buttons.
    (focusTarget || overlay.querySelector("[role=dialog], [role=alertdialog]")).focus();
  }

  function closeDialog(id) {
    const index = dialogs.findIndex((entry) => entry.id === id);
    $(id).hidden = true;
    if (index < 0) return;
    const [entry] = dialogs.splice(index, 1);
    syncModality();
    const back = returnTarget(entry);
    if (back) back.focus();
    setTimeout(settleOrder, 0);
  }

  function returnTarget(entry) {
    const node = entry.returnTo;
    if (node && node.isConnected && !node.closest("[hidden], [inert]")) return node;
    // The card of the game the detail showed, when the element that opened it is gone.
    if (entry.id === "detail" && node && node.closest) {
      const card = node.closest(".card");
      if (card && card.isConnected) return card;
    }
    return null;
  }

  function syncModality() {
    const offline = document.body.dataset.offline === "true";
    const top = dialogs.length ? dialogs[dialogs.length - 1].id : null;
    $("app").inert = offline || top !== null;
    $("setup").inert = top !== null;
    for (const id of ["detail", "confirm", "settings", "picker", "downloads"]) $(id).inert = offline || (top !== id);
  }

  function trapTab(event) {
    if (document.body.dataset.offline === "true" && !$("offline").hidden) {
      event.preventDefault();
      $("offline-box").focus();
      return undefined;
    }
    if (!dialogs.length) return undefined;
    const box = $(dialogs[dialogs.length - 1].id).querySelector(".modal");
    const items = [...box.querySelectorAll(FOCUSABLE)].filter((node) => !node.disabled && node.getClientRects().length);
    if (!items.length) { event.preventDefault(); box.focus(); return undefined; }
    const first = items[0];
    const last = items[items.length - 1];
    const inside = box.contains(document.activeElement);
    if (event.shiftKey && (!inside || document.activeElement === first || document.activeElement === box)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (!inside || document.activeElement === last)) {
      event.preventDefault();
      first.focus();
    }
    return undefined;
  }

  // -- offline: the page's peer stopped answering ------------------------------------------------
  // The whole page turns inert at once (no stale Play can be clicked) and, when the
  // silence lasts, a screen says so; the first view after reconnecting lifts both.

  function setOffline(offline) {
    clearTimeout(state.offlineTimer);
    state.offlineTimer = null;
    document.body.dataset.offline = String(offline);
    syncModality();
    if (!offline) { $("offline").hidden = true; return; }
    state.offlineTimer = setTimeout(() => {
      $("offline").hidden = false;
      $("offline-box").focus();
    }, OFFLINE_GRACE_MS);
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
    wirePicker();
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
    $("settings-cancel").addEventListener("click", () => closeDialog("settings"));
    $("settings-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const saved = await submitSettings(
        $("settings-form"), $("settings-name"), $("settings-dir"), $("settings-error"), $("settings-save"),
        { upload: $("settings-upload-limit"), gaming: $("settings-gaming-cap") },
      );
      if (saved) {
        closeDialog("settings");
        toast(saved.name_later ? "Settings saved. Other players see your new name once your downloads finish."
          : "Settings saved", "ok");
      }
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
      if (event.key === "Tab") return trapTab(event);
      if (event.key !== "Escape" || !dialogs.length || document.body.dataset.offline === "true") return undefined;
      event.preventDefault();
      const top = dialogs[dialogs.length - 1].id;
      if (top === "confirm") closeConfirm();
      else if (top === "settings") closeDialog("settings");
      else if (top === "picker") closePicker(false);
      else if (top === "downloads") closeDialog("downloads");
      else closeDetail();
      return undefined;
    });
    $("sort").addEventListener("change", (event) => chooseSort(event.target.value));
    $("grid").addEventListener("pointerleave", () => setTimeout(settleOrder, 0));
    $("grid").addEventListener("focusout", () => setTimeout(settleOrder, 0));
  }

  async function boot() {
    fillIcons(document);
    wire();
    chooseSort(storedSort());
    const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    if (match) {
      history.replaceState(null, "", location.pathname);
      const reply = await post("/api/session", { token: match[1] });
      if (!reply.ok) return lock();
    }
    connect();
    return undefined;
  }

  // The Downloads panel (downloads.js) draws with these.
  window.lanspreadPage = { post, toast, el, fillIcons, openDialog, closeDialog };

  boot();
})();

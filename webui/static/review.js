// Review page: line outlines over the scan, editable lines, token confidences, attention heat maps,
// corrections saved over the API (with history), keyboard first.
import { el, fetchJSON } from "./dom.js";

(function () {
  const root = document.getElementById("review");
  if (!root) return;
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const threshold = parseFloat(root.dataset.threshold);
  const apiBase = root.dataset.apiBase; // "/api/v1/lines/"
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const listEl = document.getElementById("lines");
  const pageImage = document.getElementById("page-image");
  const pageHeat = document.getElementById("page-heat");
  const overlay = document.getElementById("page-overlay");
  const stripToggle = document.getElementById("strip-toggle");
  const pageState = document.getElementById("page-state");
  const showPrinted = document.getElementById("show-printed");
  const printedHint = document.getElementById("printed-hint");
  const fieldsEl = document.getElementById("fields");
  const fieldList = document.getElementById("field-list");
  const SVG = "http://www.w3.org/2000/svg";
  const attentionCache = new Map();
  const rows = []; // {line, li, input, chips, canvas, img, polygon}
  let current = -1;

  function level(confidence) {
    if (confidence === null || confidence === undefined) return "unknown";
    return confidence >= threshold ? "high" : confidence >= threshold / 2 ? "mid" : "low";
  }

  async function api(path, options) {
    return (await fetchJSON(path, options)).body;
  }

  function send(path, method, payload) {
    return api(path, { method: method, headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: payload ? JSON.stringify(payload) : undefined });
  }

  // ----- the page image and its line outlines -----
  function polygonOf(line) {
    if (line.polygon) return line.polygon;
    const [x0, y0, x1, y1] = line.bbox;
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
  }

  function drawOutlines() {
    overlay.setAttribute("viewBox", `0 0 ${page.width || pageImage.naturalWidth} ${page.height || pageImage.naturalHeight}`);
    overlay.setAttribute("preserveAspectRatio", "none");
    overlay.replaceChildren();
    rows.forEach((row, index) => {
      const shape = document.createElementNS(SVG, "polygon");
      shape.setAttribute("points", row.polygon.map((p) => p.join(",")).join(" "));
      shape.setAttribute("class", "outline conf-" + level(row.line.confidence) + (index === current ? " current" : ""));
      shape.dataset.index = index;
      shape.addEventListener("click", () => focusRow(index));
      const title = document.createElementNS(SVG, "title");
      title.textContent = `line ${row.line.number}: ${row.line.text} (${percent(row.line.confidence)})`;
      shape.appendChild(title);
      overlay.appendChild(shape);
    });
  }

  function percent(c) { return c === null || c === undefined ? "–" : Math.round(c * 100) + "%"; }

  // ----- attention -----
  async function attentionFor(row) {
    if (!attentionCache.has(row.line.id)) {
      attentionCache.set(row.line.id, api(apiBase + row.line.id + "/attention"));
    }
    return attentionCache.get(row.line.id);
  }

  function mapFor(attention, token) {
    if (!attention.maps.length) return null;
    if (stripToggle.checked || token === null) {
      // whole line: for each cell, the strongest attention any token gave it
      const [h, w] = attention.grid;
      const out = Array.from({ length: h }, () => new Array(w).fill(0));
      attention.maps.forEach((m) => m.forEach((r, i) => r.forEach((v, j) => { out[i][j] = Math.max(out[i][j], v); })));
      return out;
    }
    return attention.maps[Math.min(token, attention.maps.length - 1)];
  }

  function cellAlpha(map) {
    let max = 0;
    map.forEach((r) => r.forEach((v) => { max = Math.max(max, v); }));
    return (v) => (max > 0 ? 0.75 * v / max : 0);
  }

  function drawLineHeat(row, map) {
    const canvas = row.canvas;
    canvas.width = row.img.clientWidth;
    canvas.height = row.img.clientHeight;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!map) return;
    const alpha = cellAlpha(map);
    const h = map.length, w = map[0].length;
    map.forEach((r, i) => r.forEach((v, j) => {
      ctx.fillStyle = `rgba(220, 30, 30, ${alpha(v)})`;
      ctx.fillRect(j * canvas.width / w, i * canvas.height / h, canvas.width / w + 0.5, canvas.height / h + 0.5);
    }));
  }

  function cropQuad(attention, polygon) {
    // the line image covers the detected polygon grown by crop_pad line heights on each side
    const [tl, tr, br, bl] = polygon;
    const height = (Math.hypot(bl[0] - tl[0], bl[1] - tl[1]) + Math.hypot(br[0] - tr[0], br[1] - tr[1])) / 2;
    const m = attention.crop_pad * height;
    const unit = (a, b) => { const d = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1; return [(b[0] - a[0]) / d, (b[1] - a[1]) / d]; };
    const along = unit(tl, tr), across = unit(tl, bl);
    const move = (p, sa, sc) => [p[0] + along[0] * m * sa + across[0] * m * sc, p[1] + along[1] * m * sa + across[1] * m * sc];
    return [move(tl, -1, -1), move(tr, 1, -1), move(br, 1, 1), move(bl, -1, 1)];
  }

  function drawPageHeat(row, attention, map) {
    pageHeat.width = pageImage.clientWidth;
    pageHeat.height = pageImage.clientHeight;
    const ctx = pageHeat.getContext("2d");
    ctx.clearRect(0, 0, pageHeat.width, pageHeat.height);
    if (!map) return;
    const sx = pageHeat.width / (page.width || pageImage.naturalWidth);
    const sy = pageHeat.height / (page.height || pageImage.naturalHeight);
    const [tl, tr, br, bl] = cropQuad(attention, row.polygon);
    const at = (u, v) => [((1 - v) * ((1 - u) * tl[0] + u * tr[0]) + v * ((1 - u) * bl[0] + u * br[0])) * sx,
      ((1 - v) * ((1 - u) * tl[1] + u * tr[1]) + v * ((1 - u) * bl[1] + u * br[1])) * sy];
    const alpha = cellAlpha(map);
    const h = map.length, w = map[0].length;
    map.forEach((r, i) => r.forEach((value, j) => {
      const corners = [at(j / w, i / h), at((j + 1) / w, i / h), at((j + 1) / w, (i + 1) / h), at(j / w, (i + 1) / h)];
      ctx.beginPath();
      corners.forEach((p, k) => (k ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.closePath();
      ctx.fillStyle = `rgba(220, 30, 30, ${alpha(value)})`;
      ctx.fill();
    }));
  }

  function tokenAtCaret(row) {
    const tokens = row.line.tokens || [];
    if (!tokens.length) return null;
    const value = row.input.value;
    const caret = row.input.selectionStart || 0;
    if (value === row.line.model_text) {
      let offset = 0;
      for (let i = 0; i < tokens.length; i++) {
        const piece = i === 0 ? tokens[i].text.trimStart() : tokens[i].text;
        if (caret < offset + piece.length || i === tokens.length - 1) return i;
        offset += piece.length;
      }
    }
    return Math.min(tokens.length - 1, Math.floor(caret / Math.max(value.length, 1) * tokens.length));
  }

  async function showAttention(row, token) {
    row.chips.querySelectorAll(".chip").forEach((chip, i) => chip.classList.toggle("selected", i === token && !stripToggle.checked));
    try {
      const attention = await attentionFor(row);
      const map = mapFor(attention, token);
      drawLineHeat(row, map);
      drawPageHeat(row, attention, map);
    } catch (err) {
      row.status.textContent = "attention unavailable: " + err.message;
    }
  }

  // ----- lines -----
  function renderChips(row) {
    row.chips.replaceChildren();
    (row.line.tokens || []).forEach((token, i) => {
      const chip = el("span", { class: "chip conf-" + level(token.confidence), title: `${percent(token.confidence)} sure` }, token.text.replace(/ /g, "␣"));
      chip.addEventListener("mouseenter", () => showAttention(row, i));
      chip.addEventListener("mouseleave", () => showAttention(row, tokenAtCaret(row)));
      row.chips.appendChild(chip);
    });
  }

  function renderBadges(row) {
    const line = row.line;
    row.li.classList.toggle("reviewed", !!line.reviewed);
    row.li.classList.toggle("corrected", !!line.corrected);
    row.li.classList.toggle("needs-review", !line.reviewed && (line.confidence === null || line.confidence < threshold));
    row.badge.textContent = (line.corrected ? "corrected · " : "") + (line.reviewed ? "reviewed" : percent(line.confidence));
  }

  function renderHistory(row, history) {
    row.history.replaceChildren(el("summary", {}, `history (${history.length})`));
    const list = el("ol");
    list.appendChild(el("li", {}, `model: “${row.line.model_text}”`));
    history.forEach((edit) => list.appendChild(el("li", {}, `${new Date(edit.at).toLocaleString()} · ${edit.author}: “${edit.previous}” → “${edit.text}”`)));
    row.history.appendChild(list);
  }

  // ----- printed lines (a form's labels) are hidden until asked for; F8 never stops on them -----
  function isPrinted(line) { return line.text_type === "printed"; }

  function applyPrintedFilter() {
    const hidden = !showPrinted.checked;
    rows.forEach((row) => { row.li.hidden = hidden && isPrinted(row.line); });
    overlay.querySelectorAll("polygon").forEach((shape) => {
      shape.classList.toggle("printed-hidden", hidden && isPrinted(rows[Number(shape.dataset.index)].line));
    });
    const count = rows.filter((row) => isPrinted(row.line)).length;
    printedHint.hidden = count === 0;
    printedHint.textContent = hidden ? `${count} printed line${count === 1 ? "" : "s"} hidden` : `${count} printed line${count === 1 ? "" : "s"} shown`;
  }

  // ----- fields: each label with its value, the value corrected in place -----
  function renderFields() {
    const fields = page.fields || [];
    fieldsEl.hidden = fields.length === 0;
    fieldList.replaceChildren();
    fields.forEach((field) => {
      fieldList.appendChild(el("dt", { class: "field-key" }, field.key));
      const dd = el("dd", { class: "field-value" });
      field.value_line_ids.forEach((lineId) => {
        const row = rows.find((r) => r.line.id === lineId);
        if (!row) return;
        const input = el("input", { class: "field-input", type: "text", value: row.saved, "data-line-id": String(lineId),
          "aria-label": `${field.key}: value` + (field.value_line_ids.length > 1 ? ` (line ${row.line.number})` : "") });
        input.addEventListener("keydown", async (event) => {
          if (event.key !== "Enter") return;
          event.preventDefault();
          row.input.value = input.value;
          if (await save(row)) { input.value = row.saved; input.classList.add("saved"); }
        });
        input.addEventListener("focus", () => { current = rows.indexOf(row); highlight(); });
        row.fieldInput = input;
        dd.appendChild(input);
      });
      fieldList.appendChild(dd);
    });
  }

  function buildRow(line, index) {
    const li = el("li", { id: "line-" + line.id, class: "review-line" + (isPrinted(line) ? " printed" : "") });
    const head = el("div", { class: "line-head" });
    head.appendChild(el("span", { class: "line-number" }, String(line.number)));
    const badge = el("span", { class: "badge" });
    head.appendChild(badge);
    if (line.text_type) head.appendChild(el("span", { class: "text-type", title: `${percent(line.text_type_confidence)} sure` }, line.text_type));
    li.appendChild(head);
    const figure = el("div", { class: "line-figure" });
    const img = el("img", { src: apiBase + line.id + "/image", alt: "line " + line.number, loading: "lazy" });
    const canvas = el("canvas", { class: "line-heat", "aria-hidden": "true" });
    figure.append(img, canvas);
    li.appendChild(figure);
    const chips = el("div", { class: "chips", "aria-label": "tokens and the model's confidence" });
    li.appendChild(chips);
    const input = el("input", { class: "line-text", type: "text", value: line.text, "aria-label": "text of line " + line.number, spellcheck: "false" });
    li.appendChild(input);
    const status = el("span", { class: "line-status", role: "status" });
    li.appendChild(status);
    const historyEl = el("details", { class: "history" });
    historyEl.appendChild(el("summary", {}, "history"));
    li.appendChild(historyEl);
    const row = { line, li, input, chips, canvas, img, status, badge, history: historyEl, polygon: polygonOf(line), saved: line.text };
    historyEl.addEventListener("toggle", async () => {
      if (historyEl.open) renderHistory(row, (await api(apiBase + line.id)).history);
    });
    input.addEventListener("focus", () => { current = index; highlight(); showAttention(row, tokenAtCaret(row)); });
    input.addEventListener("keyup", (e) => { if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) showAttention(row, tokenAtCaret(row)); });
    input.addEventListener("click", () => showAttention(row, tokenAtCaret(row)));
    input.addEventListener("input", () => li.classList.toggle("dirty", input.value !== row.saved));
    renderChips(row);
    renderBadges(row);
    listEl.appendChild(li);
    return row;
  }

  function highlight() {
    rows.forEach((row, i) => row.li.classList.toggle("current", i === current));
    overlay.querySelectorAll("polygon").forEach((shape) => shape.classList.toggle("current", Number(shape.dataset.index) === current));
  }

  function visibleFrom(index, step) {
    for (let i = index; i >= 0 && i < rows.length; i += step) if (!rows[i].li.hidden) return i;
    return -1;
  }

  function focusRow(index) {
    if (index < 0 || index >= rows.length) return;
    const row = rows[index];
    if (row.li.hidden) { showPrinted.checked = true; applyPrintedFilter(); }
    row.input.focus();
    row.li.scrollIntoView({ block: "nearest" });
  }

  async function save(row) {
    const changed = row.input.value !== row.saved;
    try {
      const body = changed ? await send(apiBase + row.line.id, "PATCH", { text: row.input.value })
        : await send(apiBase + row.line.id, "PATCH", { reviewed: true });
      row.line = Object.assign(row.line, body);
      row.saved = body.text;
      row.input.value = body.text;
      row.li.classList.remove("dirty");
      if (row.fieldInput) row.fieldInput.value = body.text;
      row.status.textContent = changed ? "saved" : "accepted";
      renderBadges(row);
      if (row.history.open) renderHistory(row, body.history);
      return true;
    } catch (err) {
      row.status.textContent = "not saved: " + err.message;
      return false;
    }
  }

  async function saveAll() {
    const dirty = rows.filter((row) => row.input.value !== row.saved);
    for (const row of dirty) await save(row);
    return dirty.length;
  }

  function nextNeedingReview(step) {
    for (let k = 1; k <= rows.length; k++) {
      const i = current + step * k;
      if (i < 0 || i >= rows.length) break;
      const line = rows[i].line;
      if (isPrinted(line)) continue;
      if (!line.reviewed && (line.confidence === null || line.confidence < threshold)) return i;
    }
    return -1;
  }

  async function markReviewed() {
    await saveAll();
    try {
      const body = await send(root.dataset.reviewUrl, "POST");
      rows.forEach((row) => { row.line.reviewed = true; renderBadges(row); });
      pageState.textContent = body.job_reviewed ? "reviewed (the whole job is now reviewed)" : "reviewed";
    } catch (err) {
      pageState.textContent = "could not mark reviewed: " + err.message;
    }
  }

  document.addEventListener("keydown", async (event) => {
    const row = rows[current];
    if (event.key === "F2") { event.preventDefault(); stripToggle.checked = !stripToggle.checked; if (row) showAttention(row, tokenAtCaret(row)); return; }
    if (event.key === "F8") { event.preventDefault(); const i = nextNeedingReview(event.shiftKey ? -1 : 1); if (i >= 0) focusRow(i); return; }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") { event.preventDefault(); await saveAll(); return; }
    if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key === "Enter") { event.preventDefault(); await markReviewed(); return; }
    if (!row || document.activeElement !== row.input) return;
    if (event.key === "ArrowDown") { event.preventDefault(); focusRow(visibleFrom(current + 1, 1)); }
    else if (event.key === "ArrowUp") { event.preventDefault(); focusRow(visibleFrom(current - 1, -1)); }
    else if (event.key === "Enter" && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      if (await save(row)) { const next = visibleFrom(current + 1, 1); if (next >= 0) focusRow(next); }
    } else if (event.key === "Escape") {
      row.input.value = row.saved; row.li.classList.remove("dirty"); row.status.textContent = "changes undone";
    }
  });

  stripToggle.addEventListener("change", () => { const row = rows[current]; if (row) showAttention(row, tokenAtCaret(row)); });
  document.getElementById("mark-reviewed").addEventListener("click", markReviewed);
  window.addEventListener("beforeunload", (event) => { if (rows.some((row) => row.input.value !== row.saved)) event.preventDefault(); });

  page.lines.forEach((line, index) => rows.push(buildRow(line, index)));
  renderFields();
  showPrinted.addEventListener("change", applyPrintedFilter);
  applyPrintedFilter();
  const draw = () => { drawOutlines(); applyPrintedFilter(); if (rows[current]) showAttention(rows[current], tokenAtCaret(rows[current])); };
  if (pageImage.complete) draw(); else pageImage.addEventListener("load", draw);
  window.addEventListener("resize", draw);
  const wanted = window.location.hash.startsWith("#line-") ? rows.findIndex((row) => "line-" + row.line.id === window.location.hash.slice(1)) : -1;
  const first = nextNeedingReview(1) >= 0 ? nextNeedingReview(1) : Math.max(0, visibleFrom(0, 1));
  if (rows.length) focusRow(wanted >= 0 ? wanted : first);
})();

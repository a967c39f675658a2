// Review page: line outlines over the scan (zoom and pan), editable lines with token confidences and
// attention heat maps, corrections saved over the API (with history), line editing, keyboard first.
// The pieces live in review/: geometry, heat maps, API calls, keyboard, editing, zoom.
import { el } from "./dom.js";
import { confidenceLevel, percent } from "./confidence.js";
import { ReviewApi } from "./review/api.js";
import { polygonOf } from "./review/geometry.js";
import { clearHeat, drawLineHeat, drawPageHeat, mapFor } from "./review/heat.js";
import { installEditing } from "./review/editing.js";
import { installKeyboard } from "./review/keyboard.js";
import { installZoom } from "./review/zoom.js";

const root = document.getElementById("review");
if (root) start(root);

function start(root) {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const threshold = parseFloat(root.dataset.threshold);
  const api = new ReviewApi(root, document.querySelector('meta[name="csrf-token"]').content);
  const $ = (id) => document.getElementById(id);
  const listEl = $("lines"), pageImage = $("page-image"), pageHeat = $("page-heat"), overlay = $("page-overlay");
  const stripToggle = $("strip-toggle"), pageState = $("page-state"), showPrinted = $("show-printed"), printedHint = $("printed-hint");
  const fieldsEl = $("fields"), fieldList = $("field-list"), editStatus = $("edit-status");
  const SVG = "http://www.w3.org/2000/svg";
  const size = { width: page.width || pageImage.naturalWidth, height: page.height || pageImage.naturalHeight };
  const attentionCache = new Map();
  let rows = []; // {index, line, li, input, chips, canvas, img, status, badge, history, polygon, saved}
  let current = -1;
  let heatDrawnOn = null; // the one row whose line heat map is drawn

  const level = (confidence) => confidenceLevel(confidence, threshold);
  const pending = (line) => line.model_text === null;
  const say = (message) => { editStatus.textContent = message || ""; };

  // ----- the page image and its line outlines -----
  function drawOutlines() {
    overlay.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
    overlay.setAttribute("preserveAspectRatio", "none");
    overlay.querySelectorAll("polygon").forEach((p) => p.remove());
    rows.forEach((row, index) => {
      const shape = document.createElementNS(SVG, "polygon");
      shape.setAttribute("points", row.polygon.map((p) => p.join(",")).join(" "));
      shape.setAttribute("class", "outline conf-" + (pending(row.line) ? "pending" : level(row.line.confidence)) + (index === current ? " current" : ""));
      shape.dataset.index = index;
      shape.dataset.lineId = row.line.id;
      shape.addEventListener("click", () => { if (editing.mode() === "select" && index !== current) focusRow(index); });
      const title = document.createElementNS(SVG, "title");
      title.textContent = `line ${row.line.number}: ${pending(row.line) ? "being read" : row.line.text} (${percent(row.line.confidence)})`;
      shape.appendChild(title);
      overlay.insertBefore(shape, overlay.querySelector(".handle"));
    });
    editing.decorate(rows[current]);
  }

  // ----- attention: drawn for the current line only -----
  function attentionFor(row) {
    if (!attentionCache.has(row.line.id)) attentionCache.set(row.line.id, api.attention(row.line.id));
    return attentionCache.get(row.line.id);
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
    if (heatDrawnOn && heatDrawnOn !== row) clearHeat(heatDrawnOn.canvas);
    heatDrawnOn = row;
    clearHeat(pageHeat);
    if (pending(row.line)) return;
    row.chips.querySelectorAll(".chip").forEach((chip, i) => chip.classList.toggle("selected", i === token && !stripToggle.checked));
    try {
      const attention = await attentionFor(row);
      if (rows[current] !== row) return; // the reviewer moved on while it loaded
      const map = mapFor(attention, token, stripToggle.checked);
      drawLineHeat(row.canvas, row.img, map);
      drawPageHeat(pageHeat, pageImage, size, attention, row.polygon, map);
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
    row.li.classList.toggle("pending", pending(line));
    row.li.classList.toggle("needs-review", !pending(line) && !line.reviewed && (line.confidence === null || line.confidence < threshold));
    row.badge.textContent = pending(line) ? "being read…" : (line.corrected ? "corrected · " : "") + (line.reviewed ? "reviewed" : percent(line.confidence));
    row.badge.className = "badge conf-" + (pending(line) ? "pending" : level(line.confidence));
  }

  function renderRead(row) {
    // the parts that change when a line is read (again)
    row.input.disabled = pending(row.line);
    row.input.placeholder = pending(row.line) ? "being read again…" : "";
    if (!pending(row.line)) {
      row.img.src = api.imageUrl(row.line);
      row.img.hidden = false;
    } else {
      row.img.hidden = true;
    }
    renderChips(row);
    renderBadges(row);
  }

  function describe(edit) {
    const when = new Date(edit.at).toLocaleString();
    if (edit.action === "text") return `${when} · ${edit.author}: “${edit.previous}” → “${edit.text}”`;
    const box = (b) => (b ? `[${b.join(", ")}]` : "none");
    return `${when} · ${edit.author}: ${edit.action} ${box(edit.previous_bbox)} → ${box(edit.bbox)}` + (edit.previous ? ` (was “${edit.previous}”)` : "");
  }

  function renderHistory(row, history) {
    row.history.replaceChildren(el("summary", {}, `history (${history.length})`));
    const list = el("ol");
    list.appendChild(el("li", {}, `model: “${row.line.model_text ?? "…"}”`));
    history.forEach((edit) => list.appendChild(el("li", { class: "edit-" + edit.action }, describe(edit))));
    row.history.appendChild(list);
  }

  // ----- printed lines (a form's labels) are hidden until asked for; F8 never stops on them -----
  const isPrinted = (line) => line.text_type === "printed";

  function applyPrintedFilter() {
    const hidden = !showPrinted.checked;
    rows.forEach((row) => { row.li.hidden = hidden && isPrinted(row.line); });
    overlay.querySelectorAll("polygon").forEach((shape) => {
      shape.classList.toggle("printed-hidden", hidden && isPrinted(rows[Number(shape.dataset.index)].line));
    });
    const count = rows.filter((row) => isPrinted(row.line)).length;
    printedHint.hidden = count === 0;
    printedHint.textContent = `${count} printed line${count === 1 ? "" : "s"} ${hidden ? "hidden" : "shown"}`;
  }

  // ----- fields: each label with its value, the value corrected in place -----
  function renderFields() {
    const fields = (page.fields || []).filter((f) => f.value_line_ids.some((id) => rows.some((r) => r.line.id === id)));
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

  function buildRow(line, index, unsaved) {
    const li = el("li", { id: "line-" + line.id, class: "review-line" + (isPrinted(line) ? " printed" : ""), "data-line-id": String(line.id) });
    const head = el("div", { class: "line-head" });
    head.appendChild(el("span", { class: "line-number" }, String(line.number)));
    const badge = el("span", { class: "badge" });
    head.appendChild(badge);
    if (line.text_type) head.appendChild(el("span", { class: "text-type", title: `${percent(line.text_type_confidence)} sure` }, line.text_type));
    li.appendChild(head);
    const figure = el("div", { class: "line-figure" });
    const img = el("img", { alt: "line " + line.number, loading: "lazy" });
    const canvas = el("canvas", { class: "line-heat", "aria-hidden": "true" });
    figure.append(img, canvas);
    li.appendChild(figure);
    const chips = el("div", { class: "chips", "aria-label": "tokens and the model's confidence" });
    li.appendChild(chips);
    const saved = line.text;
    const input = el("input", { class: "line-text", type: "text", value: unsaved ?? saved, "aria-label": "text of line " + line.number, spellcheck: "false" });
    li.appendChild(input);
    const status = el("span", { class: "line-status", role: "status" });
    li.appendChild(status);
    const historyEl = el("details", { class: "history" });
    historyEl.appendChild(el("summary", {}, "history"));
    li.appendChild(historyEl);
    const row = { index, line, li, input, chips, canvas, img, status, badge, history: historyEl, polygon: polygonOf(line), saved };
    li.classList.toggle("dirty", input.value !== saved);
    historyEl.addEventListener("toggle", async () => { if (historyEl.open) renderHistory(row, (await api.line(row.line.id)).history); });
    input.addEventListener("focus", () => { current = rows.indexOf(row); highlight(); showAttention(row, tokenAtCaret(row)); });
    input.addEventListener("keyup", (e) => { if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) showAttention(row, tokenAtCaret(row)); });
    input.addEventListener("click", () => showAttention(row, tokenAtCaret(row)));
    input.addEventListener("input", () => li.classList.toggle("dirty", input.value !== row.saved));
    renderRead(row);
    return row;
  }

  /** (Re)build the list and the outlines from the page's lines, keeping unsaved text and the current line. */
  function render(lines, focusId) {
    const unsaved = new Map(rows.filter((r) => r.input.value !== r.saved).map((r) => [r.line.id, r.input.value]));
    const keep = focusId ?? (rows[current] && rows[current].line.id);
    heatDrawnOn = null;
    clearHeat(pageHeat);
    rows = lines.map((line, index) => buildRow(line, index, unsaved.get(line.id)));
    listEl.replaceChildren(...rows.map((r) => r.li));
    renderFields();
    current = -1;
    drawOutlines();
    applyPrintedFilter();
    const found = rows.findIndex((r) => r.line.id === keep);
    if (found >= 0) focusRow(found);
    else if (rows.length) focusRow(Math.max(0, visibleFrom(0, 1)));
    watchPending();
  }

  function highlight() {
    rows.forEach((row, i) => row.li.classList.toggle("current", i === current));
    overlay.querySelectorAll("polygon").forEach((shape) => shape.classList.toggle("current", Number(shape.dataset.index) === current));
    editing.decorate(rows[current]);
    if (rows[current]) zoom.scrollToBox(rows[current].line.bbox, size);
  }

  function visibleFrom(index, step) {
    for (let i = index; i >= 0 && i < rows.length; i += step) if (!rows[i].li.hidden) return i;
    return -1;
  }

  function focusRow(index) {
    if (index < 0 || index >= rows.length) return;
    const row = rows[index];
    if (row.li.hidden) { showPrinted.checked = true; applyPrintedFilter(); }
    current = index;
    if (row.input.disabled) { highlight(); showAttention(row, null); } else row.input.focus();
    row.li.scrollIntoView({ block: "nearest" });
  }

  // ----- lines being read again: poll until the model has read them -----
  let watching = null;
  function watchPending() {
    clearTimeout(watching);
    if (!rows.some((r) => pending(r.line))) return;
    watching = setTimeout(async () => {
      try {
        const body = await api.pageLines();
        const byId = new Map(body.lines.map((line) => [line.id, line]));
        rows.forEach((row) => {
          const fresh = byId.get(row.line.id);
          if (!fresh || !pending(row.line) || pending(fresh)) return;
          row.line = fresh;
          row.saved = fresh.text;
          if (!row.li.classList.contains("dirty")) row.input.value = fresh.text;
          attentionCache.delete(fresh.id);
          renderRead(row);
          if (rows[current] === row) { row.input.focus(); showAttention(row, tokenAtCaret(row)); }
        });
        drawOutlines();
        applyPrintedFilter();
      } catch (err) {
        say("could not refresh the lines: " + err.message);
      }
      watchPending();
    }, 700);
  }

  async function save(row) {
    if (pending(row.line)) return false;
    const changed = row.input.value !== row.saved;
    try {
      const body = changed ? await api.correct(row.line.id, row.input.value) : await api.accept(row.line.id);
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
      if (isPrinted(line) || pending(line)) continue;
      if (!line.reviewed && (line.confidence === null || line.confidence < threshold)) return i;
    }
    return -1;
  }

  async function markReviewed() {
    await saveAll();
    try {
      const body = await api.markReviewed();
      rows.forEach((row) => { row.line.reviewed = true; renderBadges(row); });
      pageState.textContent = body.job_reviewed ? "reviewed (the whole job is now reviewed)" : "reviewed";
    } catch (err) {
      pageState.textContent = "could not mark reviewed: " + err.message;
    }
  }

  const redrawHeat = () => { const row = rows[current]; if (row) showAttention(row, tokenAtCaret(row)); };
  const zoom = installZoom($("page-viewport"), $("page-frame"), (value) => { $("zoom-level").textContent = Math.round(value * 100) + "%"; redrawHeat(); });
  const editing = installEditing({
    overlay, toolbar: $("edit-tools"), api, size, say,
    rowAt: (index) => rows[index], currentRow: () => rows[current],
    onEdited: (body, focusId) => { body.changed.forEach((id) => attentionCache.delete(id)); render(body.lines, focusId); },
  });
  $("zoom-in").addEventListener("click", zoom.zoomIn);
  $("zoom-out").addEventListener("click", zoom.zoomOut);
  $("zoom-reset").addEventListener("click", zoom.reset);

  installKeyboard({
    toggleWholeLine: () => { stripToggle.checked = !stripToggle.checked; redrawHeat(); },
    nextNeedingReview: (step) => { const i = nextNeedingReview(step); if (i >= 0) focusRow(i); },
    saveAll, markReviewed,
    move: (step) => focusRow(visibleFrom(current + step, step)),
    saveAndNext: async () => { if (await save(rows[current])) { const next = visibleFrom(current + 1, 1); if (next >= 0) focusRow(next); } },
    undoChanges: () => { const row = rows[current]; row.input.value = row.saved; row.li.classList.remove("dirty"); row.status.textContent = "changes undone"; },
    zoomIn: zoom.zoomIn, zoomOut: zoom.zoomOut, zoomReset: zoom.reset,
    draw: () => editing.setMode("draw"), split: () => editing.setMode("split"), merge: () => editing.setMode("merge"),
    selectMode: () => editing.setMode("select"), deleteLine: editing.deleteCurrent, undoEdit: editing.undo,
  }, () => rows[current] && document.activeElement === rows[current].input);

  stripToggle.addEventListener("change", redrawHeat);
  $("mark-reviewed").addEventListener("click", markReviewed);
  window.addEventListener("beforeunload", (event) => { if (rows.some((row) => row.input.value !== row.saved)) event.preventDefault(); });
  showPrinted.addEventListener("change", applyPrintedFilter);

  const wanted = window.location.hash.startsWith("#line-") ? Number(window.location.hash.slice(6)) : undefined;
  const begin = () => {
    if (!size.width) { size.width = pageImage.naturalWidth; size.height = pageImage.naturalHeight; }
    render(page.lines, wanted);
    if (wanted === undefined || !rows.some((r) => r.line.id === wanted)) {
      current = -1; // the first line that needs a look, else the first shown
      const i = nextNeedingReview(1);
      focusRow(i >= 0 ? i : Math.max(0, visibleFrom(0, 1)));
    }
  };
  if (pageImage.complete) begin(); else pageImage.addEventListener("load", begin);
  window.addEventListener("resize", () => { drawOutlines(); applyPrintedFilter(); redrawHeat(); });
}

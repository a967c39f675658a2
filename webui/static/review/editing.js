// Line editing on the page: draw a new line, move or resize the current one (drag it or its
// corners), split a line where it is clicked, merge two lines, delete the current one. Every edit
// goes through the API (kept in the line history, the changed lines read again by the model) and
// can be undone: the undo is the opposite edit, itself recorded.
import { boxBetween, corners, dragBox, pagePoint } from "./geometry.js";

const SVG = "http://www.w3.org/2000/svg";
const MIN_SIDE = 4;

/**
 * ``options``: overlay (the SVG over the page), toolbar (buttons with data-mode / data-action),
 * api (ReviewApi), size ({width, height} of the page), rowAt(index), currentRow(),
 * onEdited(pageLines, focusLineId), say(message).
 */
export function installEditing(options) {
  const { overlay, toolbar, api, size } = options;
  const undoStack = [];
  let mode = "select";
  let mergeFirst = null;
  let drag = null;

  function setMode(next) {
    mode = mode === next && next !== "select" ? "select" : next;
    mergeFirst = null;
    overlay.dataset.mode = mode;
    toolbar.querySelectorAll("[data-mode]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
    overlay.querySelectorAll(".merge-pick").forEach((p) => p.classList.remove("merge-pick"));
    options.say({ select: "", draw: "drag a box around the missing line", split: "click a line where it should be cut (Shift: cut across)",
      merge: "click the first of two lines to join" }[mode]);
  }

  function toPageLines(body) {
    return body.lines ? Promise.resolve(body) : api.pageLines().then((page) => Object.assign(page, { changed: [body.id] }));
  }

  /** Run an edit; ``inverseOf(result)`` makes its undo. */
  async function edit(label, action, inverseOf, focusOf) {
    toolbar.classList.add("busy");
    try {
      const result = await toPageLines(await action());
      undoStack.push({ label, run: inverseOf(result) });
      toolbar.querySelector('[data-action="undo"]').disabled = false;
      options.onEdited(result, focusOf ? focusOf(result) : result.changed[0]);
      options.say(label + ": the changed lines are being read again");
    } catch (err) {
      options.say(label + " failed: " + err.message);
    } finally {
      toolbar.classList.remove("busy");
    }
  }

  async function undo() {
    const last = undoStack.pop();
    toolbar.querySelector('[data-action="undo"]').disabled = undoStack.length === 0;
    if (!last) return;
    try {
      const result = await toPageLines(await last.run());
      options.onEdited(result, result.changed[0]);
      options.say("undone: " + last.label);
    } catch (err) {
      options.say("could not undo " + last.label + ": " + err.message);
    }
  }

  function deleteCurrent() {
    const row = options.currentRow();
    if (!row) return;
    const box = row.line.bbox;
    edit(`delete line ${row.line.number}`, () => api.deleteLine(row.line.id), () => () => api.drawLine(box), () => undefined);
  }

  function split(row, point, across) {
    const axis = across ? "y" : "x";
    edit(`split line ${row.line.number}`, () => api.splitLine(row.line.id, Math.round(axis === "x" ? point[0] : point[1]), axis),
      (result) => () => api.mergeLines(result.changed.slice(0, 2)));
  }

  function merge(first, second) {
    const kept = first.line.number < second.line.number ? first : second;
    const gone = kept === first ? second : first;
    const keptBox = kept.line.bbox, goneBox = gone.line.bbox;
    edit(`merge lines ${first.line.number} and ${second.line.number}`, () => api.mergeLines([first.line.id, second.line.id]),
      (result) => async () => { await api.drawLine(goneBox); return api.moveLine(result.changed[0], keptBox); });
  }

  // ----- pointer: drawing, dragging the current line, split and merge clicks -----
  function rowOf(target) {
    const shape = target.closest && target.closest("polygon.outline");
    return shape ? options.rowAt(Number(shape.dataset.index)) : null;
  }

  overlay.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const point = pagePoint(overlay, event, size);
    const handle = event.target.dataset && event.target.dataset.handle;
    if (mode === "draw") {
      event.preventDefault();
      const rubber = document.createElementNS(SVG, "rect");
      rubber.setAttribute("class", "rubber");
      overlay.appendChild(rubber);
      drag = { kind: "draw", start: point, rubber };
    } else if (mode === "select" && handle) {
      event.preventDefault();
      const row = options.currentRow();
      drag = { kind: "move", handle, start: point, row, box: row.line.bbox, next: row.line.bbox };
    } else if (mode === "split") {
      const row = rowOf(event.target);
      if (row) { event.preventDefault(); split(row, point, event.shiftKey); }
    } else if (mode === "merge") {
      const row = rowOf(event.target);
      if (!row) return;
      event.preventDefault();
      if (!mergeFirst) {
        mergeFirst = row;
        event.target.classList.add("merge-pick");
        options.say(`line ${row.line.number} chosen: click the line to join it with`);
      } else if (mergeFirst !== row) {
        const first = mergeFirst;
        mergeFirst = null;
        merge(first, row);
      }
    }
    if (drag) overlay.setPointerCapture(event.pointerId);
  });

  overlay.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const point = pagePoint(overlay, event, size);
    if (drag.kind === "draw") {
      const [x0, y0, x1, y1] = boxBetween(drag.start, point, size);
      Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }).forEach(([k, v]) => drag.rubber.setAttribute(k, v));
    } else {
      drag.next = dragBox(drag.box, drag.handle, point[0] - drag.start[0], point[1] - drag.start[1], size);
      decorate(drag.row, drag.next);
    }
  });

  overlay.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const done = drag;
    drag = null;
    const point = pagePoint(overlay, event, size);
    if (done.kind === "draw") {
      done.rubber.remove();
      const box = boxBetween(done.start, point, size);
      if (box[2] - box[0] < MIN_SIDE || box[3] - box[1] < MIN_SIDE) return;
      edit("draw a line", () => api.drawLine(box), (result) => () => api.deleteLine(result.changed[0]));
      setMode("select");
    } else if (done.next.join() !== done.box.join()) {
      const id = done.row.line.id, before = done.box;
      edit(`${done.handle === "move" ? "move" : "resize"} line ${done.row.line.number}`, () => api.moveLine(id, done.next),
        () => () => api.moveLine(id, before));
    }
  });

  /** Handles on the current line (select mode): its outline drags it, its corners resize it. */
  function decorate(row, box) {
    overlay.querySelectorAll(".handle").forEach((h) => h.remove());
    if (!row || mode !== "select") return;
    const shape = overlay.querySelector(`polygon.outline[data-index="${row.index}"]`);
    if (!shape) return;
    const current = box || row.line.bbox;
    if (box) shape.setAttribute("points", corners(box).map((p) => p.join(",")).join(" "));
    shape.dataset.handle = "move";
    const r = Math.max(4, Math.round(Math.min(size.width, size.height) / 150));
    corners(current).forEach(([x, y], i) => {
      const h = document.createElementNS(SVG, "rect");
      Object.entries({ x: x - r, y: y - r, width: 2 * r, height: 2 * r, class: "handle", "data-handle": ["nw", "ne", "se", "sw"][i] })
        .forEach(([k, v]) => h.setAttribute(k, v));
      overlay.appendChild(h);
    });
  }

  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.mode) setMode(button.dataset.mode);
    else if (button.dataset.action === "delete") deleteCurrent();
    else if (button.dataset.action === "undo") undo();
  });
  setMode("select");

  return { setMode, undo, deleteCurrent, decorate, mode: () => mode };
}

// The review page's keyboard: every action has a key, so a reviewer never needs the mouse to read
// through a page. ``actions`` maps names to functions; ``inLine()`` says whether a line's text has focus.

/** Bind the review page's keys to ``actions``. */
export function installKeyboard(actions, inLine) {
  document.addEventListener("keydown", async (event) => {
    const ctrl = event.ctrlKey || event.metaKey;
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    const key = event.key;
    const bound = (name, ...args) => { event.preventDefault(); return actions[name](...args); };
    if (key === "F2") return bound("toggleWholeLine");
    if (key === "F8") return bound("nextNeedingReview", event.shiftKey ? -1 : 1);
    if (ctrl && key.toLowerCase() === "s") return bound("saveAll");
    if (ctrl && event.shiftKey && key === "Enter") return bound("markReviewed");
    if (event.altKey && !ctrl) {
      // page tools: Alt so that they work while a line's text has the focus
      const tools = { "=": "zoomIn", "+": "zoomIn", "-": "zoomOut", "0": "zoomReset", d: "draw", x: "split", m: "merge", z: "undoEdit", Delete: "deleteLine", Backspace: "deleteLine" };
      const name = tools[key.length === 1 ? key.toLowerCase() : key] || tools[event.code === "Equal" ? "=" : event.code === "Minus" ? "-" : event.code === "Digit0" ? "0" : ""];
      if (name) return bound(name);
    }
    if (!typing && !ctrl && !event.altKey) {
      const plain = { "+": "zoomIn", "=": "zoomIn", "-": "zoomOut", "0": "zoomReset", Escape: "selectMode" };
      if (plain[key]) return bound(plain[key]);
    }
    if (!inLine()) return;
    if (key === "ArrowDown") return bound("move", 1);
    if (key === "ArrowUp") return bound("move", -1);
    if (key === "Enter" && !ctrl && !event.shiftKey) return bound("saveAndNext");
    if (key === "Escape") return bound("undoChanges");
  });
}

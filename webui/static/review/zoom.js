// Zoom and pan of the page image: the wheel zooms about the pointer, buttons and keys zoom about the
// middle, dragging the page pans it (unless an editing tool claimed the pointer), and the current
// line is scrolled into view.

const MIN = 1, MAX = 8;

/** Zoom ``frame`` (image, heat map and outlines together) inside the scrolling ``viewport``. */
export function installZoom(viewport, frame, onChange) {
  let level = 1;

  function set(next, clientX, clientY) {
    next = Math.max(MIN, Math.min(MAX, next));
    const rect = viewport.getBoundingClientRect();
    const px = (clientX === undefined ? rect.left + viewport.clientWidth / 2 : clientX) - rect.left;
    const py = (clientY === undefined ? rect.top + viewport.clientHeight / 2 : clientY) - rect.top;
    // keep the page point under (px, py) where it is
    const fx = (viewport.scrollLeft + px) / frame.offsetWidth, fy = (viewport.scrollTop + py) / frame.offsetHeight;
    level = next;
    frame.style.width = level * 100 + "%";
    viewport.scrollLeft = fx * frame.offsetWidth - px;
    viewport.scrollTop = fy * frame.offsetHeight - py;
    viewport.dataset.zoom = level.toFixed(2);
    onChange(level);
  }

  viewport.addEventListener("wheel", (event) => {
    event.preventDefault();
    set(level * (event.deltaY < 0 ? 1.2 : 1 / 1.2), event.clientX, event.clientY);
  }, { passive: false });

  let pan = null;
  viewport.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.defaultPrevented || level === MIN) return;
    pan = { x: event.clientX, y: event.clientY, left: viewport.scrollLeft, top: viewport.scrollTop };
  });
  window.addEventListener("pointermove", (event) => {
    if (!pan) return;
    viewport.scrollLeft = pan.left - (event.clientX - pan.x);
    viewport.scrollTop = pan.top - (event.clientY - pan.y);
    viewport.classList.add("panning");
  });
  window.addEventListener("pointerup", () => { pan = null; viewport.classList.remove("panning"); });

  /** Scroll so that ``box`` (page pixels) is in view, centring it when it is not. */
  function scrollToBox(box, size) {
    const sx = frame.offsetWidth / size.width, sy = frame.offsetHeight / size.height;
    const [x0, y0, x1, y1] = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy];
    const left = viewport.scrollLeft, top = viewport.scrollTop;
    const inside = x0 >= left && x1 <= left + viewport.clientWidth && y0 >= top && y1 <= top + viewport.clientHeight;
    if (!inside) viewport.scrollTo({ left: (x0 + x1) / 2 - viewport.clientWidth / 2, top: (y0 + y1) / 2 - viewport.clientHeight / 2 });
  }

  return {
    zoomIn: () => set(level * 1.25),
    zoomOut: () => set(level / 1.25),
    reset: () => set(1),
    level: () => level,
    scrollToBox,
  };
}

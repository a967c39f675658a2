// Page geometry of the review page: line outlines, the line crop's margin, boxes drawn and dragged.

/** The line's corner points in page pixels (its polygon, or the corners of its box). */
export function polygonOf(line) {
  if (line.polygon) return line.polygon;
  const [x0, y0, x1, y1] = line.bbox;
  return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
}

/** The quadrilateral the line image covers: the polygon grown by crop_pad line heights (as the worker cuts it). */
export function cropQuad(attention, polygon) {
  const [tl, tr, br, bl] = polygon;
  const height = (Math.hypot(bl[0] - tl[0], bl[1] - tl[1]) + Math.hypot(br[0] - tr[0], br[1] - tr[1])) / 2;
  const m = attention.crop_pad * height;
  const unit = (a, b) => { const d = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1; return [(b[0] - a[0]) / d, (b[1] - a[1]) / d]; };
  const along = unit(tl, tr), across = unit(tl, bl);
  const move = (p, sa, sc) => [p[0] + along[0] * m * sa + across[0] * m * sc, p[1] + along[1] * m * sa + across[1] * m * sc];
  return [move(tl, -1, -1), move(tr, 1, -1), move(br, 1, 1), move(bl, -1, 1)];
}

/** Where a pointer event falls on the page, in page pixels (the overlay's viewBox is the page). */
export function pagePoint(overlay, event, size) {
  const rect = overlay.getBoundingClientRect();
  return [(event.clientX - rect.left) * size.width / rect.width, (event.clientY - rect.top) * size.height / rect.height];
}

/** The upright box with corners ``a`` and ``b``, in whole pixels, inside the page. */
export function boxBetween(a, b, size) {
  const clamp = (v, hi) => Math.max(0, Math.min(hi, Math.round(v)));
  return [clamp(Math.min(a[0], b[0]), size.width), clamp(Math.min(a[1], b[1]), size.height),
    clamp(Math.max(a[0], b[0]), size.width), clamp(Math.max(a[1], b[1]), size.height)];
}

/** ``box`` dragged by (dx, dy): moved whole, or by one corner ("nw", "ne", "se", "sw"). */
export function dragBox(box, handle, dx, dy, size) {
  let [x0, y0, x1, y1] = box;
  if (handle === "move") {
    const mx = Math.max(-x0, Math.min(size.width - x1, dx)), my = Math.max(-y0, Math.min(size.height - y1, dy));
    return [x0 + mx, y0 + my, x1 + mx, y1 + my].map(Math.round);
  }
  if (handle.includes("w")) x0 += dx; else x1 += dx;
  if (handle.includes("n")) y0 += dy; else y1 += dy;
  return boxBetween([x0, y0], [x1, y1], size);
}

/** The smallest box around all ``boxes``. */
export function union(boxes) {
  return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1])),
    Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))];
}

/** Corner points of an upright box. */
export function corners(box) {
  const [x0, y0, x1, y1] = box;
  return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
}

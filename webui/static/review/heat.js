// Attention heat maps: one token's (or the whole line's) cross-attention drawn over the line image
// and over the page. Only the current line is ever drawn: the caller clears the line it leaves.
import { cropQuad } from "./geometry.js";

/** The map to draw: one token's, or (whole line, or no token) the strongest any token gave each cell. */
export function mapFor(attention, token, wholeLine) {
  if (!attention.maps.length) return null;
  if (wholeLine || token === null) {
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

/** Empty a heat canvas. */
export function clearHeat(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

/** The map over the line image (``canvas`` sits on ``img``). */
export function drawLineHeat(canvas, img, map) {
  canvas.width = img.clientWidth;
  canvas.height = img.clientHeight;
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

/** The map over the page, warped onto the quadrilateral the line image was cut from. */
export function drawPageHeat(canvas, pageImage, size, attention, polygon, map) {
  canvas.width = pageImage.clientWidth;
  canvas.height = pageImage.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!map) return;
  const sx = canvas.width / size.width, sy = canvas.height / size.height;
  const [tl, tr, br, bl] = cropQuad(attention, polygon);
  const at = (u, v) => [((1 - v) * ((1 - u) * tl[0] + u * tr[0]) + v * ((1 - u) * bl[0] + u * br[0])) * sx,
    ((1 - v) * ((1 - u) * tl[1] + u * tr[1]) + v * ((1 - u) * bl[1] + u * br[1])) * sy];
  const alpha = cellAlpha(map);
  const h = map.length, w = map[0].length;
  map.forEach((r, i) => r.forEach((value, j) => {
    const points = [at(j / w, i / h), at((j + 1) / w, i / h), at((j + 1) / w, (i + 1) / h), at(j / w, (i + 1) / h)];
    ctx.beginPath();
    points.forEach((p, k) => (k ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
    ctx.closePath();
    ctx.fillStyle = `rgba(220, 30, 30, ${alpha(value)})`;
    ctx.fill();
  }));
}

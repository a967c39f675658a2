// The review page's calls to the JSON API; every URL comes from the server (data attributes).
import { fetchJSON } from "../dom.js";

export class ReviewApi {
  /** ``root.dataset``: linesBase ("/api/v1/lines/"), pageLinesUrl, mergeUrl, reviewUrl. */
  constructor(root, csrf) {
    this.urls = { lines: root.dataset.linesBase, pageLines: root.dataset.pageLinesUrl, merge: root.dataset.mergeUrl, review: root.dataset.reviewUrl };
    this.csrf = csrf;
  }

  lineUrl(id, suffix) { return this.urls.lines + id + (suffix || ""); }

  /** The line image, with its box in the URL so that a line cut again is not taken from the cache. */
  imageUrl(line) { return this.lineUrl(line.id, "/image") + "?box=" + line.bbox.join("-"); }

  async get(url) { return (await fetchJSON(url)).body; }

  async send(url, method, payload) {
    const headers = { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": this.csrf };
    return (await fetchJSON(url, { method, headers, body: payload ? JSON.stringify(payload) : undefined })).body;
  }

  line(id) { return this.get(this.lineUrl(id)); }
  attention(id) { return this.get(this.lineUrl(id, "/attention")); }
  correct(id, text) { return this.send(this.lineUrl(id), "PATCH", { text }); }
  accept(id) { return this.send(this.lineUrl(id), "PATCH", { reviewed: true }); }
  markReviewed() { return this.send(this.urls.review, "POST"); }

  // line editing: each answers with the page's lines ({lines, changed}), except move (the line)
  pageLines() { return this.get(this.urls.pageLines); }
  drawLine(bbox) { return this.send(this.urls.pageLines, "POST", { bbox }); }
  moveLine(id, bbox) { return this.send(this.lineUrl(id), "PATCH", { bbox }); }
  splitLine(id, at, axis) { return this.send(this.lineUrl(id, "/split"), "POST", { at, axis }); }
  mergeLines(ids) { return this.send(this.urls.merge, "POST", { line_ids: ids }); }
  deleteLine(id) { return this.send(this.lineUrl(id), "DELETE"); }
}

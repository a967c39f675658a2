// Polls the job's API resource and renders progress, then each page with its fields and text.
import { el, fetchJSON } from "./dom.js";
import { confidenceLevel, percent } from "./confidence.js";

(function () {
  const root = document.getElementById("job");
  const api = root.dataset.api;
  const imageBase = root.dataset.imageBase;
  const statusEl = document.getElementById("status");
  const progressEl = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const errorEl = document.getElementById("job-error");
  const pagesEl = document.getElementById("pages");
  const downloads = document.getElementById("downloads");
  const fieldsDownload = document.getElementById("fields-download");
  const threshold = parseFloat(root.dataset.threshold);
  const rendered = new Set();

  function confidenceClass(c) {
    return "conf-" + confidenceLevel(c, threshold); // the review page's scale
  }

  function renderPage(page) {
    const id = "page-" + page.number;
    let card = document.getElementById(id);
    if (!card) {
      card = el("article", { id: id, class: "card page" });
      pagesEl.appendChild(card);
    }
    if (rendered.has(page.number)) return;
    card.replaceChildren();
    const source = page.filename + (page.source_page > 1 || /\.(pdf|tiff?)$/i.test(page.filename) ? " (page " + page.source_page + ")" : "");
    card.appendChild(el("h2", {}, "Page " + page.number + " · " + source));
    const status = el("span", { class: "status status-" + page.status }, page.status);
    card.appendChild(status);
    if (page.status === "succeeded" || page.status === "failed") rendered.add(page.number);
    const body = el("div", { class: "page-body" });
    if (page.status !== "queued") {
      const img = el("img", { src: imageBase + "/pages/" + page.number + "/image", alt: "page " + page.number, loading: "lazy" });
      body.appendChild(img);
    }
    const lines = el("ol", { class: "lines" });
    if (page.error) card.appendChild(el("p", { class: "error" }, page.error));
    if (page.status === "succeeded") {
      const review = el("a", { class: "review-link", href: imageBase + "/pages/" + page.number + "/review" }, page.reviewed ? "Review again" : "Review this page");
      card.appendChild(review);
    }
    if (page.fields && page.fields.length) {
      const fields = el("dl", { class: "job-fields", "aria-label": "fields of page " + page.number });
      page.fields.forEach(function (field) {
        fields.appendChild(el("dt", {}, field.key));
        fields.appendChild(el("dd", { class: confidenceClass(field.confidence) }, field.value || "∅"));
      });
      card.appendChild(fields);
    }
    page.lines.forEach(function (line) {
      const item = el("li", { class: "line " + confidenceClass(line.confidence) });
      item.appendChild(el("span", { class: "line-text" }, line.text || "∅"));
      item.appendChild(el("span", { class: "confidence", title: "model confidence" }, percent(line.confidence)));
      lines.appendChild(item);
    });
    body.appendChild(lines);
    card.appendChild(body);
  }

  async function poll() {
    let delay = 2000;
    try {
      const { body: job, response } = await fetchJSON(api);
      statusEl.textContent = job.status;
      statusEl.className = "status status-" + job.status;
      const p = job.progress;
      progressEl.max = p.pages_total;
      progressEl.value = p.pages_done + p.pages_failed;
      progressText.textContent = "— " + (p.pages_done + p.pages_failed) + " of " + p.pages_total + " pages, " +
        p.lines_done + " of " + p.lines_total + " lines read";
      if (job.error) { errorEl.hidden = false; errorEl.textContent = job.error; }
      job.pages.forEach(renderPage);
      if (["succeeded", "failed", "partial"].includes(job.status)) {
        downloads.hidden = false; // results exist only once the job has finished
        fieldsDownload.hidden = !(job.fields && job.fields.length);
        return;
      }
      const retry = parseInt(response.headers.get("Retry-After") || "2", 10);
      delay = Math.max(500, retry * 1000);
    } catch (err) {
      errorEl.hidden = false;
      errorEl.textContent = "Could not refresh: " + err.message + " (retrying)";
      delay = 5000;
    }
    setTimeout(poll, delay);
  }

  poll();
})();

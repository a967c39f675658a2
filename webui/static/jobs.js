// Jobs list: file names, pages, submitter, times, status, live progress and lines to review;
// filters (file name, status, dates, needs review); deleting a job after confirmation.
import { el, fetchJSON } from "./dom.js";

(function () {
  const root = document.getElementById("jobs");
  const api = root.dataset.api;
  const jobBase = root.dataset.jobBase;
  const deleteBase = root.dataset.deleteBase;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("filters");
  const body = document.getElementById("job-rows");
  const statusLine = document.getElementById("jobs-status");
  const COLUMNS = 9;

  function query() {
    const params = new URLSearchParams();
    new FormData(form).forEach((value, key) => { if (value) params.set(key, value); });
    return params;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

  function cell(text, attrs) { return el("td", attrs || {}, text); }

  async function remove(job, name) {
    if (!window.confirm(`Delete the job “${name}” with all its files, pages and results? This cannot be undone.`)) return;
    try {
      await fetchJSON(deleteBase.replace("JOB", job.id), { method: "DELETE", headers: { Accept: "application/json", "X-CSRFToken": csrf } });
      statusLine.textContent = `Deleted “${name}”.`;
    } catch (err) {
      statusLine.textContent = `Could not delete “${name}”: ${err.message}`;
    }
    refresh();
  }

  function row(job) {
    const tr = el("tr", { "data-job": job.id });
    const name = job.files.length ? job.files.join(", ") : job.id.slice(0, 8);
    const first = el("td", { class: "files" });
    first.appendChild(el("a", { href: jobBase.replace("JOB", job.id), title: "job " + job.id }, name));
    tr.appendChild(first);
    const p = job.progress;
    tr.appendChild(cell(String(p.pages_total), { class: "pages" }));
    tr.appendChild(cell(job.submitter || "—", { class: "submitter" }));
    tr.appendChild(cell(when(job.created_at)));
    tr.appendChild(cell(when(job.finished_at)));
    const status = el("td"); status.appendChild(el("span", { class: "status status-" + job.status }, job.reviewed ? job.status + " · reviewed" : job.status)); tr.appendChild(status);
    const progress = el("td");
    const bar = el("progress", { max: String(p.pages_total || 1), value: String(p.pages_done + p.pages_failed) });
    progress.append(bar, el("span", { class: "hint" }, ` ${p.pages_done + p.pages_failed}/${p.pages_total} pages, ${p.lines_done}/${p.lines_total} lines`));
    tr.appendChild(progress);
    tr.appendChild(cell(job.needs_review ? job.needs_review + " lines" : "—", { class: job.needs_review ? "needs" : "" }));
    const actions = el("td");
    const button = el("button", { type: "button", class: "delete-job", "aria-label": "delete " + name }, "Delete");
    button.addEventListener("click", () => remove(job, name));
    actions.appendChild(button);
    tr.appendChild(actions);
    return tr;
  }

  function message(text, cls) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: String(COLUMNS), class: cls }, text));
    return tr;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const params = query();
    history.replaceState(null, "", params.toString() ? "?" + params : window.location.pathname);
    try {
      const { body: data } = await fetchJSON(api + "?" + params);
      body.replaceChildren(...(data.jobs.length ? data.jobs.map(row) : [message("No jobs match.", "hint")]));
      const running = data.jobs.some((job) => job.status === "queued" || job.status === "processing");
      timer = setTimeout(refresh, running ? 2000 : 10000);
    } catch (err) {
      body.replaceChildren(message("Could not load jobs: " + err.message, "error"));
      timer = setTimeout(refresh, 5000);
    }
  }

  let typing = null;
  form.addEventListener("change", refresh);
  form.addEventListener("input", (event) => {
    if (event.target.name !== "file") return;
    clearTimeout(typing);
    typing = setTimeout(refresh, 250); // while typing a file name
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  refresh();
})();

// Jobs list: filters and live progress, refreshed every few seconds from /api/v1/jobs.
import { el, fetchJSON } from "./dom.js";

(function () {
  const root = document.getElementById("jobs");
  const api = root.dataset.api;
  const jobBase = root.dataset.jobBase;
  const form = document.getElementById("filters");
  const body = document.getElementById("job-rows");

  function query() {
    const params = new URLSearchParams();
    new FormData(form).forEach((value, key) => { if (value) params.set(key, value); });
    return params;
  }

  function row(job) {
    const tr = el("tr", { "data-job": job.id });
    const link = el("a", { href: jobBase.replace("JOB", job.id) }, job.id.slice(0, 8));
    const first = el("td"); first.appendChild(link); tr.appendChild(first);
    tr.appendChild(el("td", {}, new Date(job.created_at).toLocaleString()));
    const status = el("td"); status.appendChild(el("span", { class: "status status-" + job.status }, job.reviewed ? job.status + " · reviewed" : job.status)); tr.appendChild(status);
    const p = job.progress;
    const cell = el("td");
    const bar = el("progress", { max: String(p.pages_total || 1), value: String(p.pages_done + p.pages_failed) });
    cell.append(bar, el("span", { class: "hint" }, ` ${p.pages_done + p.pages_failed}/${p.pages_total} pages, ${p.lines_done}/${p.lines_total} lines`));
    tr.appendChild(cell);
    tr.appendChild(el("td", { class: job.needs_review ? "needs" : "" }, job.needs_review ? job.needs_review + " lines" : "—"));
    return tr;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const params = query();
    history.replaceState(null, "", params.toString() ? "?" + params : window.location.pathname);
    try {
      const { body: data } = await fetchJSON(api + "?" + params);
      body.replaceChildren(...(data.jobs.length ? data.jobs.map(row) : [el("tr", {}, "")]));
      if (!data.jobs.length) body.firstChild.appendChild(el("td", { colspan: "5", class: "hint" }, "No jobs match."));
      const running = data.jobs.some((job) => job.status === "queued" || job.status === "processing");
      timer = setTimeout(refresh, running ? 2000 : 10000);
    } catch (err) {
      body.replaceChildren(el("tr", {}, ""));
      body.firstChild.appendChild(el("td", { colspan: "5", class: "error" }, "Could not load jobs: " + err.message));
      timer = setTimeout(refresh, 5000);
    }
  }

  form.addEventListener("change", refresh);
  refresh();
})();

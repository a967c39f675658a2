// Small helpers shared by the pages' scripts.

/** A new element with attributes and, optionally, text. */
export function el(tag, attrs, text) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** fetch() for the JSON API: a signed-out session reloads the page (to the sign-in form). */
export async function fetchJSON(url, options) {
  const response = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options || {}));
  if (response.status === 401) { window.location.reload(); throw new Error("signed out"); }
  const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body && body.error ? body.error.message : response.statusText);
  return { body, response };
}

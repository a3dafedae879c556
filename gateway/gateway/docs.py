"""One HTML page, ``/api/docs``, that lists the operations of every API.

nginx routes ``/api/docs`` here. The page's script fetches each API's
OpenAPI document through the same origin (``/api/v1/<api>/openapi.json``)
and renders its operations, so it needs no assets beyond this page.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response

docs_blp = Blueprint("docs", __name__)

# Title and OpenAPI document path of every API behind nginx.
SPECS = (
    ("Accounts and auth (gateway)", "/api/v1/auth/openapi.json"),
    ("Students", "/api/v1/students/openapi.json"),
    ("Internships", "/api/v1/internships/openapi.json"),
    ("Notifications", "/api/v1/notifications/openapi.json"),
    ("Documents", "/api/v1/documents/openapi.json"),
)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Edulink API docs</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
td, th { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
code { font-size: .95em; }
.method { font-weight: bold; text-transform: uppercase; width: 5rem; }
.error { color: #a00; }
</style>
</head>
<body>
<h1>Edulink API docs</h1>
<p>Every API sits behind this gateway. Send a bearer token from
<code>POST /api/v1/auth/login</code> in the <code>Authorization</code> header.
Each section lists the operations of one OpenAPI document.</p>
<ul id="specs"></ul>
<div id="apis"></div>
<script>
const SPECS = __SPECS__;
const METHODS = ["get", "post", "put", "patch", "delete"];

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function operationsTable(spec) {
  const table = element("table");
  const head = table.insertRow();
  for (const title of ["method", "path", "summary"]) {
    head.appendChild(element("th", title));
  }
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const row = table.insertRow();
      row.appendChild(element("td", method, "method"));
      const cell = row.insertCell();
      cell.appendChild(element("code", path));
      const operation = item[method];
      row.appendChild(element("td", operation.summary || operation.description || ""));
    }
  }
  return table;
}

async function showSpec([title, url]) {
  const item = element("li");
  const link = element("a", title);
  link.href = url;
  item.appendChild(link);
  document.getElementById("specs").appendChild(item);

  const section = element("section");
  section.appendChild(element("h2", title));
  document.getElementById("apis").appendChild(section);
  try {
    const response = await fetch(url, {headers: {Accept: "application/json"}});
    if (!response.ok) throw new Error(url + " returned " + response.status);
    const spec = await response.json();
    const info = spec.info || {};
    section.appendChild(element("p", (info.title || "") + " " + (info.version || "")));
    section.appendChild(operationsTable(spec));
  } catch (error) {
    section.appendChild(element("p", "Not available: " + error.message, "error"));
  }
}

SPECS.forEach(showSpec);
</script>
</body>
</html>
"""


@docs_blp.get("/api/docs")
def api_docs() -> Response:
    """Return the page that lists every API's operations."""
    body = PAGE.replace("__SPECS__", json.dumps(SPECS))
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response

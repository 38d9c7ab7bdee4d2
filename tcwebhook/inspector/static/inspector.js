// tcwebhook inspector: live rows and their delivery state, live status, copy buttons, the body
// tree's search and folding. Served as
// a file: the page's Content-Security-Policy allows no inline script. Everything inserted comes
// from the server, already escaped; nothing here builds HTML from payload values.
"use strict";

const MAX_ROWS = 500;
// Matches a search opens and marks: past them it only counts (a body may have 10 000 nodes).
const MAX_HITS = 300;

function liveRows() {
  const rows = document.getElementById("rows");
  if (!rows || !rows.dataset.live) return;
  const source = new EventSource(rows.dataset.live);
  source.addEventListener("message", (message) => {
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
    rows.insertAdjacentHTML("afterbegin", message.data);
    while (rows.rows.length > MAX_ROWS) rows.deleteRow(-1);
  });
  // The delivery state of rows already shown: each <tr data-id> brings the row's new cell.
  source.addEventListener("states", (message) => {
    const parsed = document.createElement("template");
    parsed.innerHTML = message.data;
    for (const update of parsed.content.querySelectorAll("tr[data-id]")) {
      const row = rows.querySelector(`tr[data-id="${CSS.escape(update.dataset.id)}"]`);
      const cell = row && row.querySelector("td.deliveries");
      if (cell && update.cells.length) cell.replaceWith(update.cells[0]);
    }
  });
}

function liveStatus() {
  const status = document.getElementById("status");
  if (!status || !status.dataset.live) return;
  const source = new EventSource(status.dataset.live);
  source.addEventListener("message", (message) => {
    status.innerHTML = message.data;
  });
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Select the text and copy it";
      }
    });
  }
}

function setOpen(tree, open) {
  for (const details of tree.querySelectorAll("details")) details.open = open;
}

// Marks every key and value holding ``text`` (any case) and opens the levels above them.
function findInTree(tree, text, hits) {
  for (const old of tree.querySelectorAll(".hit")) old.classList.remove("hit");
  const needle = text.trim().toLowerCase();
  if (!needle) {
    hits.textContent = "";
    return;
  }
  let count = 0;
  let first = null;
  for (const span of tree.querySelectorAll(".key, .value")) {
    if (!span.textContent.toLowerCase().includes(needle)) continue;
    count += 1;
    if (count > MAX_HITS) continue;
    span.classList.add("hit");
    first = first || span;
    let details = span.parentElement.closest("details");
    while (details && tree.contains(details)) {
      details.open = true;
      details = details.parentElement.closest("details");
    }
  }
  hits.textContent = count ? `${count} found${count > MAX_HITS ? ` (the first ${MAX_HITS} marked)` : ""}` : "not found";
  if (first) first.scrollIntoView({ block: "center" });
}

function bodyTools() {
  for (const tools of document.querySelectorAll(".body-tools")) {
    const tree = document.getElementById(`${tools.dataset.for}-tree`);
    const search = tools.querySelector(".tree-search");
    if (!tree || !search) continue;
    const hits = tools.querySelector(".tree-hits");
    tools.querySelector(".tree-expand").addEventListener("click", () => setOpen(tree, true));
    tools.querySelector(".tree-collapse").addEventListener("click", () => setOpen(tree, false));
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => findInTree(tree, search.value, hits), 150);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  liveRows();
  liveStatus();
  copyButtons();
  bodyTools();
});

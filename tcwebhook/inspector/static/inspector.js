// tcwebhook inspector: live rows and their delivery state, live status, copy buttons. Served as
// a file: the page's Content-Security-Policy allows no inline script. Everything inserted comes
// from the server, already escaped; nothing here builds HTML from payload values.
"use strict";

const MAX_ROWS = 500;

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

document.addEventListener("DOMContentLoaded", () => {
  liveRows();
  liveStatus();
  copyButtons();
});

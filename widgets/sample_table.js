// SampleTable: draws `rows` in `order` (sorted in Python); a header click sets sort_by / sort_ascending,
// a row click selects it (`selected` holds row keys); ctrl/cmd/shift-click adds a row, keeping `max_selected`.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function render({ model, el }) {
  el.classList.add("msx-sample-table");
  const caption = document.createElement("div");
  caption.className = "msx-st-caption";
  const scroller = document.createElement("div");
  scroller.className = "msx-st-scroll";
  const table = document.createElement("table");
  table.className = "msx-st-table";
  scroller.append(table);
  el.append(caption, scroller);

  function drawCaption() {
    const text = model.get("caption");
    caption.textContent = text;
    caption.style.display = text ? "" : "none";
  }

  function drawTable() {
    const columns = model.get("columns") || [];
    const rows = model.get("rows") || [];
    const keys = model.get("row_keys") || [];
    const order = model.get("order") || [];
    const numeric = new Set(model.get("numeric") || []);
    const sortBy = model.get("sort_by");
    const arrow = model.get("sort_ascending") ? " ▲" : " ▼";
    const head = columns
      .map((c, i) => {
        const cls = numeric.has(c) ? "msx-st-num" : "";
        const mark = c === sortBy ? `<span class="msx-st-arrow">${arrow}</span>` : "";
        return `<th class="${cls}" data-col="${i}" title="sort by ${esc(c)}">${esc(c)}${mark}</th>`;
      })
      .join("");
    const body = order
      .map((r) => {
        const cells = (rows[r] || [])
          .map((v, i) => `<td class="${numeric.has(columns[i]) ? "msx-st-num" : ""}">${esc(v)}</td>`)
          .join("");
        return `<tr data-key="${keys[r]}">${cells}</tr>`;
      })
      .join("");
    table.innerHTML = `<thead><tr>${head}</tr></thead><tbody>${body}</tbody>`;
    markSelection();
  }

  function markSelection() {
    const selected = model.get("selected") || [];
    for (const tr of table.querySelectorAll("tbody tr")) {
      const at = selected.indexOf(Number(tr.dataset.key));
      tr.classList.toggle("msx-st-selected", at >= 0);
      tr.classList.toggle("msx-st-second", at === 1);
    }
  }

  function onClick(event) {
    const th = event.target.closest("th");
    if (th && table.contains(th)) {
      const column = (model.get("columns") || [])[Number(th.dataset.col)];
      if (column === undefined) return;
      if (model.get("sort_by") === column) {
        model.set("sort_ascending", !model.get("sort_ascending"));
      } else {
        model.set("sort_by", column);
        model.set("sort_ascending", true);
      }
      model.save_changes();
      return;
    }
    const tr = event.target.closest("tbody tr");
    if (!tr || !table.contains(tr)) return;
    const key = Number(tr.dataset.key);
    let selected = [...(model.get("selected") || [])];
    if (event.ctrlKey || event.metaKey || event.shiftKey) {
      if (selected.includes(key)) {
        selected = selected.filter((k) => k !== key);
      } else {
        selected.push(key);
        const keep = Math.max(1, model.get("max_selected") || 1);
        selected = selected.slice(-keep);
      }
    } else {
      selected = [key];
    }
    model.set("selected", selected);
    model.save_changes();
    markSelection();
  }

  table.addEventListener("click", onClick);
  const redrawOn = ["change:rows", "change:order", "change:columns", "change:row_keys", "change:numeric",
    "change:sort_by", "change:sort_ascending"];
  for (const name of redrawOn) model.on(name, drawTable);
  model.on("change:selected", markSelection);
  model.on("change:caption", drawCaption);
  drawCaption();
  drawTable();

  return () => {
    table.removeEventListener("click", onClick);
    for (const name of redrawOn) model.off(name, drawTable);
    model.off("change:selected", markSelection);
    model.off("change:caption", drawCaption);
  };
}

export default { render };

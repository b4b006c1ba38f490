// ChooseSchedule's option list: one focusable button per value of the next decision, drawn from `rows`.
// ↑/↓ (or ←/→, Home/End) move the focus and set `highlighted` (Python previews that value's TIR or diff); Enter,
// Space or a click sends {event: "choose", index}; Backspace sends {event: "back"}. While `busy`, choices are
// ignored (the buttons stay focusable: a disabled button would drop the keyboard focus).

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function render({ model, el }) {
  el.classList.add("msx-cs-options");
  const head = document.createElement("div");
  head.className = "msx-cs-head";
  head.innerHTML =
    "<span>value</span><span>predicted score</span><span>spread (best – worst)</span><span>valid</span><span></span>";
  const list = document.createElement("div");
  list.className = "msx-cs-list";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "values of the next decision");
  list.dataset.lmSuppressShortcuts = "true"; // JupyterLab (Lumino) leaves these keys to the list
  const empty = document.createElement("div");
  empty.className = "msx-cs-empty";
  el.append(head, list, empty);
  let refocus = false; // a choice made from the list: focus the new list once it is drawn

  function buttons() {
    return [...list.querySelectorAll("button.msx-cs-option")];
  }

  function draw() {
    const rows = model.get("rows") || [];
    const top = Math.max(0, ...rows.map((r) => r.bar || 0));
    list.innerHTML = rows
      .map((r, i) => {
        const width = top > 0 ? Math.round((100 * (r.bar || 0)) / top) : 0;
        const current = r.current ? '<span class="msx-cs-current">current</span>' : "";
        return (
          `<button type="button" class="msx-cs-option" role="option" data-index="${i}" tabindex="-1"` +
          ` title="${esc(r.title || "")}">` +
          `<span class="msx-cs-label">${esc(r.label)}</span>` +
          `<span class="msx-cs-score"><span class="msx-cs-bar" style="width:${width}%"></span>` +
          `<span class="msx-cs-num">${esc(r.score)}</span></span>` +
          `<span class="msx-cs-spread">${esc(r.spread)}</span>` +
          `<span class="msx-cs-valid">${esc(r.valid)}</span>${current}</button>`
        );
      })
      .join("");
    head.style.display = rows.length ? "" : "none";
    empty.textContent = rows.length ? "" : model.get("empty_text") || "";
    mark();
    if (refocus) {
      refocus = false;
      focusHighlighted();
    }
  }

  function mark() {
    const at = model.get("highlighted");
    buttons().forEach((b, i) => {
      b.classList.toggle("msx-cs-highlighted", i === at);
      b.setAttribute("aria-selected", i === at ? "true" : "false");
      b.tabIndex = i === (at >= 0 ? at : 0) ? 0 : -1; // one tab stop: the highlighted value
    });
    el.classList.toggle("msx-cs-busy", Boolean(model.get("busy")));
  }

  function focusHighlighted() {
    const all = buttons();
    const at = model.get("highlighted");
    const target = all[at >= 0 && at < all.length ? at : 0];
    if (target) target.focus({ preventScroll: true });
  }

  function highlight(index) {
    const all = buttons();
    if (!all.length) return;
    const next = Math.max(0, Math.min(all.length - 1, index));
    model.set("highlighted", next);
    model.save_changes();
    mark();
    all[next].focus({ preventScroll: true });
  }

  function choose(index) {
    if (model.get("busy")) return;
    refocus = true;
    model.send({ event: "choose", index });
  }

  function onClick(event) {
    const button = event.target.closest("button.msx-cs-option");
    if (!button || !list.contains(button)) return;
    const index = Number(button.dataset.index);
    if (model.get("highlighted") !== index) highlight(index);
    choose(index);
  }

  function onKeyDown(event) {
    const at = model.get("highlighted");
    const moves = { ArrowDown: at + 1, ArrowRight: at + 1, ArrowUp: at - 1, ArrowLeft: at - 1, Home: 0,
      End: buttons().length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      highlight(moves[event.key]);
    } else if (event.key === "Backspace") {
      event.preventDefault();
      if (!model.get("busy")) {
        refocus = true;
        model.send({ event: "back" });
      }
    }
    // Enter and Space click the focused button (the browser does it): onClick chooses.
    event.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the list
  }

  function onFocusIn(event) {
    const button = event.target.closest("button.msx-cs-option");
    if (button && Number(button.dataset.index) !== model.get("highlighted")) {
      model.set("highlighted", Number(button.dataset.index));
      model.save_changes();
      mark();
    }
  }

  list.addEventListener("click", onClick);
  list.addEventListener("keydown", onKeyDown);
  list.addEventListener("focusin", onFocusIn);
  model.on("change:rows", draw);
  model.on("change:empty_text", draw);
  model.on("change:highlighted", mark);
  model.on("change:busy", mark);
  draw();

  return () => {
    list.removeEventListener("click", onClick);
    list.removeEventListener("keydown", onKeyDown);
    list.removeEventListener("focusin", onFocusIn);
    model.off("change:rows", draw);
    model.off("change:empty_text", draw);
    model.off("change:highlighted", mark);
    model.off("change:busy", mark);
  };
}

export default { render };

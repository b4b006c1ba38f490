// CodeView: highlighted code lines (HTML made in Python), optional trace pane whose lines select instructions.
// Clicking a trace line sets `selected_instruction`; the TIR lines of `line_map[selected]` are marked here.

function linesOf(pane) {
  const out = new Map();
  for (const div of pane.querySelectorAll(".msx-line")) {
    out.set(Number(div.dataset.line), div);
  }
  return out;
}

function scrollToLine(pane, div) {
  // Scroll the pane only (scrollIntoView would also scroll the notebook).
  const top = div.offsetTop - pane.offsetTop;
  if (top < pane.scrollTop || top > pane.scrollTop + pane.clientHeight - div.offsetHeight) {
    pane.scrollTop = Math.max(0, top - pane.clientHeight / 3);
  }
}

function render({ model, el }) {
  el.classList.add("msx-code-view");
  const root = document.createElement("div");
  root.className = "msx-cv-panes";
  const codeBox = document.createElement("div");
  codeBox.className = "msx-cv-box";
  const codeTitle = document.createElement("div");
  codeTitle.className = "msx-cv-title";
  codeTitle.textContent = "TIR";
  const codePane = document.createElement("div");
  codePane.className = "msx-cv-pane msx-cv-code";
  codeBox.append(codeTitle, codePane);
  const traceBox = document.createElement("div");
  traceBox.className = "msx-cv-box";
  const traceTitle = document.createElement("div");
  traceTitle.className = "msx-cv-title";
  traceTitle.textContent = "trace (click an instruction)";
  const tracePane = document.createElement("div");
  tracePane.className = "msx-cv-pane msx-cv-trace";
  traceBox.append(traceTitle, tracePane);
  root.append(codeBox, traceBox);
  el.append(root);

  let codeLines = new Map();
  let traceLines = new Map();

  function mark() {
    const highlighted = new Set(model.get("highlight_lines") || []);
    const selected = model.get("selected_instruction");
    const lineMap = model.get("line_map") || {};
    const selectedLines = new Set(selected >= 0 ? lineMap[String(selected)] || [] : []);
    let firstSelected = null;
    for (const [number, div] of codeLines) {
      div.classList.toggle("msx-hl", highlighted.has(number));
      const isSelected = selectedLines.has(number);
      div.classList.toggle("msx-sel", isSelected);
      if (isSelected && firstSelected === null) firstSelected = div;
    }
    const instructions = model.get("trace_instructions") || [];
    for (const [number, div] of traceLines) {
      const index = instructions[number - 1];
      div.classList.toggle("msx-sel", selected >= 0 && index === selected);
      div.classList.toggle("msx-clickable", index !== undefined && index >= 0);
    }
    if (firstSelected !== null) scrollToLine(codePane, firstSelected);
  }

  function drawCode() {
    codePane.innerHTML = model.get("code_html");
    codePane.classList.toggle("msx-cv-diff", model.get("mode") === "diff");
    codeLines = linesOf(codePane);
    mark();
  }

  function drawTrace() {
    const html = model.get("trace_html");
    tracePane.innerHTML = html;
    traceLines = linesOf(tracePane);
    const twoPanes = html.length > 0;
    traceBox.style.display = twoPanes ? "" : "none";
    codeTitle.style.display = twoPanes ? "" : "none";
    root.classList.toggle("msx-cv-two", twoPanes);
    mark();
  }

  function onTraceClick(event) {
    const div = event.target.closest(".msx-line");
    if (!div || !tracePane.contains(div)) return;
    const index = (model.get("trace_instructions") || [])[Number(div.dataset.line) - 1];
    if (index === undefined || index < 0) return;
    const next = model.get("selected_instruction") === index ? -1 : index; // a second click deselects
    model.set("selected_instruction", next);
    model.save_changes();
    mark();
  }

  tracePane.addEventListener("click", onTraceClick);
  model.on("change:code_html", drawCode);
  model.on("change:mode", drawCode);
  model.on("change:trace_html", drawTrace);
  model.on("change:highlight_lines", mark);
  model.on("change:selected_instruction", mark);
  model.on("change:line_map", mark);
  model.on("change:trace_instructions", mark);
  drawCode();
  drawTrace();

  return () => {
    tracePane.removeEventListener("click", onTraceClick);
    model.off("change:code_html", drawCode);
    model.off("change:mode", drawCode);
    model.off("change:trace_html", drawTrace);
    model.off("change:highlight_lines", mark);
    model.off("change:selected_instruction", mark);
    model.off("change:line_map", mark);
    model.off("change:trace_instructions", mark);
  };
}

export default { render };

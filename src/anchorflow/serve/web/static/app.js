// anchorflow serve: renders every `.chart` (a Vega-Lite spec with its data inline, in
// data-spec) with vega-embed, then marks it: data-rendered="true" and data-points="<marks>",
// or data-error="<message>" (and a console error) when it fails.
"use strict";

function countMarks(scenegraph) {
  // Every item of every mark in the scenegraph (bars, points, line vertices...).
  let count = 0;
  const visit = (node) => {
    if (!node) return;
    if (node.marktype && Array.isArray(node.items)) {
      if (node.marktype !== "group") count += node.items.length;
      node.items.forEach(visit);
    } else if (Array.isArray(node.items)) {
      node.items.forEach(visit);
    }
  };
  visit(scenegraph && scenegraph.root);
  return count;
}

async function renderChart(div) {
  let spec;
  try {
    spec = JSON.parse(div.dataset.spec);
  } catch (error) {
    div.dataset.error = "bad spec: " + error.message;
    console.error("anchorflow chart:", div.dataset.error);
    return;
  }
  try {
    const result = await vegaEmbed(div, spec, { renderer: "svg", actions: false });
    div.dataset.points = String(countMarks(result.view.scenegraph()));
    div.dataset.rendered = "true";
  } catch (error) {
    div.dataset.error = String(error && error.message ? error.message : error);
    console.error("anchorflow chart:", div.dataset.error);
  }
}

function renderCharts(root) {
  return Promise.all(
    Array.from((root || document).querySelectorAll(".chart[data-spec]")).map(renderChart),
  );
}

// Buttons that ask before they act (Run now, Acknowledge): data-confirm="question".
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

window.anchorflow = { renderCharts, renderChart };
document.addEventListener("DOMContentLoaded", () => renderCharts(document));

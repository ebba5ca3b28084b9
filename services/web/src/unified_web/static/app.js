// The only script of our own: draws the sales chart from the JSON block next to its canvas (no inline script,
// so the CSP can forbid it), again after htmx swaps the overview in.
(function () {
  "use strict";
  var palette = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0969da", "#bf3989", "#57606a"];

  function draw(root) {
    var canvas = root.querySelector ? root.querySelector("#sales-chart") : null;
    var data = root.querySelector ? root.querySelector("#sales-chart-data") : null;
    if (!canvas || !data || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(data.textContent);
    var existing = Chart.getChart(canvas);
    if (existing) { existing.destroy(); }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) {
          return { label: d.label, data: d.data.map(Number), backgroundColor: palette[i % palette.length] };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: spec.currency } } }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(document); });
})();

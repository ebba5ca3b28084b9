// The only script of our own: draws the sales chart from the JSON in its canvas's data-chart attribute (no
// inline script, so the CSP can forbid it), again after htmx swaps the overview in.
(function () {
  "use strict";
  // Eight colours that stay apart for common colour-vision deficiencies (Okabe-Ito), then they repeat.
  var palette = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000"];

  function draw(root) {
    var canvas = root.querySelector ? root.querySelector("#sales-chart") : null;
    if (!canvas || !canvas.dataset.chart || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(canvas.dataset.chart);
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

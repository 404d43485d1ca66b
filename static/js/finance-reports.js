/* The console's report chart (finance/templates/admin/finance/reports/report.html), drawn
   by the vendored Chart.js (static/vendor/chartjs/) from the report's chart as JSON
   (json_script: no inline script under the CSP). The figures are Decimal strings; they
   become numbers only to be drawn: the table beside the chart has every exact figure. */
(function () {
  "use strict";
  var data = document.getElementById("report-chart-data");
  var canvas = document.getElementById("report-chart");
  if (!data || !canvas || typeof window.Chart === "undefined") {
    return;
  }
  var chart = JSON.parse(data.textContent);
  var palette = ["#4f5bd5", "#35c3a5", "#f2a541", "#e5567a", "#2a3356", "#8e97ff", "#1f9e89", "#b86e00"];
  var stacked = chart.kind === "stacked-bar";
  var line = chart.kind === "line";
  var datasets = chart.series.map(function (series, i) {
    var colour = palette[i % palette.length];
    return {
      label: series.label,
      data: series.values.map(Number),
      backgroundColor: colour,
      borderColor: colour,
      borderWidth: line ? 2 : 0,
      pointRadius: line ? 2 : 0
    };
  });
  new window.Chart(canvas, {
    type: line ? "line" : "bar",
    data: {labels: chart.labels, datasets: datasets},
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: {mode: "index", intersect: false},
      scales: {
        x: {stacked: stacked, ticks: {autoSkip: true, maxRotation: 0, font: {size: 12}}},
        y: {stacked: stacked, beginAtZero: true, ticks: {font: {size: 12}},
            title: {display: Boolean(chart.unit), text: chart.unit, font: {size: 12}}}
      },
      plugins: {legend: {position: "bottom", labels: {font: {size: 12}}}}
    }
  });
}());

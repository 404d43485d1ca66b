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
  var palette = ["#4f5bd5", "#35c3a5", "#f2a541", "#e5567a", "#9b59b6", "#8e97ff", "#1f9e89", "#b86e00"];
  var stacked = chart.kind === "stacked-bar";
  var line = chart.kind === "line";
  // A currency unit (ISO 4217) formats the axis and the tooltips as money, as |money
  // writes it in the table ($1,234.56, €1,234.56); other units as plain numbers.
  var money = /^[A-Z]{3}$/.test(chart.unit || "");
  var whole = new Intl.NumberFormat("en-US", money ? {style: "currency", currency: chart.unit,
    maximumFractionDigits: 0} : {maximumFractionDigits: 0});
  var exact = new Intl.NumberFormat("en-US", money ? {style: "currency", currency: chart.unit} :
    {maximumFractionDigits: 4});
  var datasets = chart.series.map(function (series, i) {
    var colour = palette[i % palette.length];
    // A series may be drawn as a line over the chart's bars (series.kind): it is then
    // not stacked with them (its own stack), and drawn on top (order 0).
    var asLine = series.kind ? series.kind === "line" : line;
    var set = {
      label: series.label,
      data: series.values.map(Number),
      backgroundColor: colour,
      borderColor: colour,
      borderWidth: asLine ? 2 : 0,
      pointRadius: asLine ? 3 : 0
    };
    if (series.kind && series.kind !== (line ? "line" : "bar")) {
      set.type = series.kind;
      set.stack = "own-" + i;
      set.order = asLine ? 0 : 1;
      if (asLine) {
        set.backgroundColor = "#ffffff";
        set.borderColor = "#1b1f3b";
        set.pointBackgroundColor = "#1b1f3b";
      }
    } else {
      set.order = 1;
      if (stacked) {
        set.stack = "main";  // bars of the same stack id overlap unless the axis stacks them
      }
    }
    return set;
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
        y: {stacked: stacked, beginAtZero: true,
            ticks: {font: {size: 12}, callback: function (value) { return whole.format(value); }},
            title: {display: Boolean(chart.unit), text: chart.unit, font: {size: 12}}}
      },
      plugins: {
        // In the series' order (Chart.js would sort the legend by drawing order).
        legend: {position: "bottom", labels: {font: {size: 12}, sort: function (a, b) {
          return a.datasetIndex - b.datasetIndex;
        }}},
        tooltip: {callbacks: {label: function (ctx) {
          return ctx.dataset.label + ": " + exact.format(ctx.parsed.y);
        }}}
      }
    }
  });
}());

// watchkeeper dashboard: draws the Plotly figures the server embedded as JSON, opens a
// window's report when a drift cell is clicked, and asks before destructive actions.
"use strict";

function drawCharts() {
  if (typeof Plotly === "undefined") return;
  document.querySelectorAll("[data-figure]").forEach(function (element) {
    var source = document.getElementById(element.dataset.figure);
    if (!source) return;
    var figure = JSON.parse(source.textContent);
    var config = { displaylogo: false, responsive: true };
    if (element.classList.contains("spark")) config.staticPlot = true;
    Plotly.newPlot(element, figure.data, figure.layout, config).then(function () {
      element.dataset.rendered = "true";
    });
    if (element.dataset.report) {
      element.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        if (!point || !point.customdata) return;
        var bounds = point.customdata;
        var url = element.dataset.report + "start=" + encodeURIComponent(bounds[0]) +
          "&end=" + encodeURIComponent(bounds[1]);
        window.location.assign(url);
      });
    }
  });
}

function confirmForms() {
  document.querySelectorAll("form.confirm").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  drawCharts();
  confirmForms();
});

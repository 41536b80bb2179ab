(function () {
  "use strict";
  var body = document.body;
  var root = document.documentElement;
  var COLORS = { reference: "#5b7fb3", current: "#e07b39" };

  function recordError(message) {
    root.setAttribute("data-js-error", String(message).slice(0, 300));
    body.setAttribute("data-plot-errors", String(Number(body.getAttribute("data-plot-errors") || 0) + 1));
  }

  var plots = [];
  try {
    plots = JSON.parse(document.getElementById("wk-plot-data").textContent).plots || [];
  } catch (error) {
    recordError("plot data: " + error.message);
  }

  // Plotly reads a few HTML-like tags in text; escaping makes every label show verbatim.
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function numericTraces(plot) {
    var centers = [], widths = [], ranges = [];
    for (var i = 0; i + 1 < plot.edges.length; i++) {
      var lo = plot.edges[i], hi = plot.edges[i + 1];
      centers.push(lo === null || hi === null ? null : (lo + hi) / 2);
      widths.push(lo === null || hi === null ? 0 : hi - lo);
      ranges.push("[" + lo + ", " + hi + ")");
    }
    return ["reference", "current"].map(function (side) {
      return {
        type: "bar", name: side, x: centers, y: plot[side], width: widths, text: ranges,
        textposition: "none", opacity: 0.55, marker: { color: COLORS[side] },
        hovertemplate: "%{text}<br>" + side + ": %{y:.2%}<extra></extra>"
      };
    });
  }

  function categoricalTraces(plot) {
    var labels = plot.labels.map(plain);
    return ["reference", "current"].map(function (side) {
      return {
        type: "bar", name: side, x: labels, y: plot[side], marker: { color: COLORS[side] },
        hovertemplate: "%{x}<br>" + side + ": %{y:.2%}<extra></extra>"
      };
    });
  }

  function draw(container) {
    if (container.hasAttribute("data-state")) {
      return;
    }
    if (typeof window.Plotly === "undefined") {
      container.setAttribute("data-state", "unavailable");
      container.textContent = "plotly.js did not load (no network?); the tables hold every number.";
      body.setAttribute("data-plotly", "missing");
      return;
    }
    var plot = plots[Number(container.getAttribute("data-plot"))];
    if (!plot) {
      container.setAttribute("data-state", "error");
      container.textContent = "No plot data for this column.";
      return;
    }
    container.setAttribute("data-state", "drawing");
    var numeric = plot.type === "numeric";
    var layout = {
      height: 280, margin: { l: 56, r: 16, t: 12, b: 48 }, bargap: numeric ? 0 : 0.15,
      barmode: numeric ? "overlay" : "group", legend: { orientation: "h", y: 1.12 },
      xaxis: { type: numeric ? "linear" : "category", automargin: true },
      yaxis: { tickformat: ".0%", title: { text: "share" }, rangemode: "tozero" },
      font: { family: "system-ui, sans-serif", size: 12 }
    };
    var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
    try {
      window.Plotly.newPlot(container, numeric ? numericTraces(plot) : categoricalTraces(plot), layout, config)
        .then(function () {
          container.setAttribute("data-state", "drawn");
          body.setAttribute("data-plots-drawn", String(Number(body.getAttribute("data-plots-drawn")) + 1));
        })
        .catch(function (error) {
          container.setAttribute("data-state", "error");
          recordError(error && error.message ? error.message : error);
        });
    } catch (error) {
      container.setAttribute("data-state", "error");
      recordError(error.message);
    }
  }

  function drawInside(details) {
    var containers = details.querySelectorAll(".plot[data-plot]");
    for (var i = 0; i < containers.length; i++) {
      draw(containers[i]);
    }
  }

  var sections = document.querySelectorAll("details.dist");
  for (var i = 0; i < sections.length; i++) {
    sections[i].addEventListener("toggle", function (event) {
      if (event.target.open) {
        drawInside(event.target);
      }
    });
    if (sections[i].open) {
      drawInside(sections[i]);
    }
  }

  // A link from the drift table opens the column's distribution, which draws it.
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest('a[href^="#dist-"]') : null;
    if (link) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (target) {
        target.open = true;
      }
    }
  });
})();

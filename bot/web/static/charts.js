// The console's dashboard charts, drawn as SVG from the service's own statistics API
// (GET /api/v1/stats, with the console's session). No library, nothing from outside.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value, kind) {
    if (value === null || value === undefined) return "-";
    if (kind === "rate") return (value * 100).toFixed(1) + "%";
    if (kind === "score") return value.toFixed(2);
    return String(value);
  }

  // One horizontal bar chart: a bar per group, scaled to the largest value (or 1 for a rate, 10 for a score).
  function barChart(title, groups, metric, names) {
    var rowH = 24, labelW = 130, width = 380, valueW = 58;
    var height = 30 + rowH * groups.length;
    var max = metric.kind === "rate" ? 1 : metric.kind === "score" ? 10 : 0;
    groups.forEach(function (g) { var v = g[metric.name]; if (typeof v === "number" && v > max) max = v; });
    if (!max) max = 1;
    var svg = el("svg", {"class": "chart", viewBox: "0 0 " + width + " " + height, role: "img",
                         "aria-label": title, "data-metric": metric.name});
    svg.appendChild(el("title", {}, title));
    svg.appendChild(el("text", {x: 0, y: 16, "font-weight": "600"}, title));
    groups.forEach(function (g, i) {
      var y = 26 + i * rowH, v = g[metric.name];
      var w = typeof v === "number" ? Math.max(0, (width - labelW - valueW) * v / max) : 0;
      var label = String(names[g.key === null ? "" : g.key] || g.name || g.key || "-");
      svg.appendChild(el("text", {x: 0, y: y + 15}, label.length > 11 ? label.slice(0, 10) + "…" : label));
      svg.appendChild(el("rect", {"class": "bar" + (metric.bad ? " alt" : ""), x: labelW, y: y + 3,
                                  width: w.toFixed(1), height: rowH - 8, rx: 3}));
      svg.appendChild(el("text", {x: labelW + w + 6, y: y + 15}, format(v, metric.kind)));
    });
    return svg;
  }

  function draw(holder) {
    var metrics = JSON.parse(holder.getAttribute("data-metrics"));
    var names = JSON.parse(holder.getAttribute("data-names") || "{}");
    var url = "/api/v1/stats?by=" + encodeURIComponent(holder.getAttribute("data-by")) + holder.getAttribute("data-query");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (doc) {
        holder.textContent = "";
        if (!doc.groups.length) { holder.textContent = holder.getAttribute("data-empty"); return; }
        metrics.forEach(function (m) { holder.appendChild(barChart(m.label, doc.groups, m, names)); });
        holder.setAttribute("data-drawn", "true");
      })
      .catch(function () { holder.setAttribute("data-drawn", "failed"); });
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
})();

/* tiein's graph drawing: a small force layout drawn as SVG (no library, ~8 KB).
 *
 *   TieinGraph.draw(svg, {nodes: [{id, label, group, title}], edges: [{id, source, target, group, title}]},
 *                   {colors: {group: "#hex"}, center: id, layout: "force" | "radial", onClick: function (node) {}})
 *
 * The layout is computed before drawing (deterministic: the same graph draws the same way): a
 * force layout with the centre node (if any) pinned in the middle, or "radial": the centre in the
 * middle and the others around it in their order (a product's neighbourhood, grouped by kind). Wheel or pinch zooms, dragging the background pans.
 * Nodes are <g class="node" data-id> with a <circle> and a <text>; edges are <line class="edge">.
 */
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1769aa", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#e67700", "#5c940d", "#495057"];

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function short(text, n) {
    text = String(text == null ? "" : text);
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function colorOf(colors, group) {
    if (!colors[group]) {
      colors[group] = PALETTE[Object.keys(colors).length % PALETTE.length];
    }
    return colors[group];
  }

  // the centre in the middle, the others on a circle (two alternating rings when many), in order
  function radial(nodes, center, aspect) {
    var others = nodes.filter(function (d) { return d.id !== center; }), n = others.length;
    nodes.forEach(function (d) { if (d.id === center) { d.x = 0; d.y = 0; } });
    others.forEach(function (d, i) {
      var a = (2 * Math.PI * i) / Math.max(1, n) - Math.PI / 2, r = n > 14 && i % 2 ? 130 : 210;
      d.x = Math.cos(a) * r * Math.max(1, Math.min(aspect, 2.2));
      d.y = Math.sin(a) * r;
    });
  }

  function layout(nodes, edges, center) {
    var n = nodes.length, index = {}, i, j, k;
    nodes.forEach(function (d, i) { index[d.id] = i; });
    // start on a circle (the centre in the middle), so the result does not depend on chance
    var radius = 60 + 18 * Math.sqrt(n);
    nodes.forEach(function (d, i) {
      var a = (2 * Math.PI * i) / Math.max(1, n);
      d.x = Math.cos(a) * radius;
      d.y = Math.sin(a) * radius;
      if (d.id === center) { d.x = 0; d.y = 0; }
    });
    var seenPair = {};
    var links = edges.map(function (e) { return [index[e.source], index[e.target]]; })
      .filter(function (l) {  // one spring per pair of nodes, however many relationships join them
        var key = Math.min(l[0], l[1]) + "," + Math.max(l[0], l[1]);
        if (l[0] === undefined || l[1] === undefined || l[0] === l[1] || seenPair[key]) { return false; }
        return (seenPair[key] = true);
      });
    var want = 90 + Math.min(120, 4 * n);
    var steps = n > 300 ? 120 : 300;
    for (k = 0; k < steps; k++) {
      var t = 1 - k / steps, fx = new Float64Array(n), fy = new Float64Array(n);
      for (i = 0; i < n; i++) {  // repulsion
        for (j = i + 1; j < n; j++) {
          var dx = nodes[i].x - nodes[j].x, dy = nodes[i].y - nodes[j].y;
          var d2 = dx * dx + dy * dy + 0.01, f = 2400 / d2;
          fx[i] += dx * f; fy[i] += dy * f; fx[j] -= dx * f; fy[j] -= dy * f;
        }
      }
      links.forEach(function (l) {  // springs
        var a = nodes[l[0]], b = nodes[l[1]];
        var dx = b.x - a.x, dy = b.y - a.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01;
        var f = (d - want) * 0.05 / d;
        fx[l[0]] += dx * f; fy[l[0]] += dy * f; fx[l[1]] -= dx * f; fy[l[1]] -= dy * f;
      });
      for (i = 0; i < n; i++) {
        fx[i] -= nodes[i].x * 0.01; fy[i] -= nodes[i].y * 0.01;  // gravity
        if (nodes[i].id === center) { continue; }
        var m = Math.sqrt(fx[i] * fx[i] + fy[i] * fy[i]), cap = 30 * t + 1;
        if (m > cap) { fx[i] *= cap / m; fy[i] *= cap / m; }
        nodes[i].x += fx[i]; nodes[i].y += fy[i];
      }
    }
  }

  function draw(svg, graph, opts) {
    opts = opts || {};
    var colors = opts.colors || {};
    var nodes = graph.nodes.map(function (d) { return Object.assign({}, d); });
    var byId = {};
    nodes.forEach(function (d) { byId[d.id] = d; });
    var edges = graph.edges.filter(function (e) { return byId[e.source] && byId[e.target]; });
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    if (!nodes.length) { return; }
    var W = svg.clientWidth || 800, H = svg.clientHeight || 420, pad = 46, narrow = W < 500;
    if (opts.layout === "radial" && byId[opts.center]) { radial(nodes, opts.center, W / H); }
    else { layout(nodes, edges, opts.center); }

    // fit the layout to the drawing's size in pixels, so labels and dots keep their size
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    nodes.forEach(function (d) {
      x0 = Math.min(x0, d.x); y0 = Math.min(y0, d.y); x1 = Math.max(x1, d.x); y1 = Math.max(y1, d.y);
    });
    var s = Math.min((W - 2 * pad) / Math.max(1, x1 - x0), (H - 2 * pad) / Math.max(1, y1 - y0), 1.6);
    nodes.forEach(function (d) {
      d.x = W / 2 + (d.x - (x0 + x1) / 2) * s;
      d.y = H / 2 + (d.y - (y0 + y1) / 2) * s;
    });
    svg.__view = [0, 0, W, H];
    svg.setAttribute("viewBox", svg.__view.join(" "));
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");

    var defs = el("defs", {}, svg);
    var groups = {};
    edges.forEach(function (e) { groups[e.group] = true; });
    Object.keys(groups).forEach(function (g, i) {
      var m = el("marker", { id: "arrow-" + i, viewBox: "0 0 10 10", refX: 22, refY: 5, markerWidth: 7,
        markerHeight: 7, orient: "auto-start-reverse" }, defs);
      el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: colorOf(colors, g) }, m);
      groups[g] = "url(#arrow-" + i + ")";
    });
    var edgeLayer = el("g", { "class": "edges" }, svg);
    var nodeLayer = el("g", { "class": "nodes" }, svg);
    // several relationships between the same two nodes: drawn side by side
    var pairs = {};
    edges.forEach(function (e) {
      var key = [e.source, e.target].sort().join("\u0000");
      e.slot = (pairs[key] = (pairs[key] || 0) + 1) - 1;
    });
    edges.forEach(function (e) {
      var a = byId[e.source], b = byId[e.target];
      var key = [e.source, e.target].sort().join("\u0000"), k = pairs[key];
      var dx = b.x - a.x, dy = b.y - a.y, len = Math.sqrt(dx * dx + dy * dy) || 1;
      var off = (e.slot - (k - 1) / 2) * 5, ox = (-dy / len) * off, oy = (dx / len) * off;
      var line = el("line", { "class": "edge", x1: a.x + ox, y1: a.y + oy, x2: b.x + ox, y2: b.y + oy,
        stroke: colorOf(colors, e.group), "stroke-width": 2, "marker-end": groups[e.group], "data-kind": e.group }, edgeLayer);
      el("title", {}, line).textContent = e.title || e.group;
    });
    nodes.forEach(function (d) {
      var g = el("g", { "class": "node" + (d.id === opts.center ? " center" : ""), "data-id": d.id,
        transform: "translate(" + d.x + "," + d.y + ")", tabindex: 0, role: "button" }, nodeLayer);
      el("circle", { r: d.id === opts.center ? 16 : 11, fill: colorOf(colors, d.group),
        stroke: "#fff", "stroke-width": 2 }, g);
      var text = el("text", { y: d.id === opts.center ? 32 : 26, "text-anchor": "middle" }, g);
      text.textContent = short(d.label, d.id === opts.center ? (narrow ? 16 : 24) : (narrow ? 9 : 14));
      el("title", {}, g).textContent = d.title || d.label;
      if (opts.onClick) {
        g.addEventListener("click", function (ev) { ev.stopPropagation(); opts.onClick(d); });
        g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { opts.onClick(d); } });
      }
    });

    if (!svg.__wired) { wire(svg); }
    return colors;
  }

  // zoom with the wheel, pan by dragging the background (wired once per <svg>, whatever is drawn in it)
  function wire(svg) {
    svg.__wired = true;
    function setView(v) { svg.__view = v; svg.setAttribute("viewBox", v.join(" ")); }
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var view = svg.__view, s = ev.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
      var px = view[0] + ((ev.clientX - r.left) / r.width) * view[2];
      var py = view[1] + ((ev.clientY - r.top) / r.height) * view[3];
      setView([px - (px - view[0]) * s, py - (py - view[1]) * s, view[2] * s, view[3] * s]);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("pointerdown", function (ev) {
      if (ev.target.closest && ev.target.closest("g.node")) { return; }
      drag = { x: ev.clientX, y: ev.clientY, v: svg.__view.slice() };
    });
    svg.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      var r = svg.getBoundingClientRect(), s = Math.max(drag.v[2] / r.width, drag.v[3] / r.height);
      setView([drag.v[0] - (ev.clientX - drag.x) * s, drag.v[1] - (ev.clientY - drag.y) * s, drag.v[2], drag.v[3]]);
    });
    ["pointerup", "pointerleave"].forEach(function (t) { svg.addEventListener(t, function () { drag = null; }); });
  }

  function legend(container, colors, names) {
    container.textContent = "";
    Object.keys(colors).forEach(function (g) {
      var item = document.createElement("span");
      item.className = "key";
      var dot = document.createElement("i");
      dot.style.background = colors[g];
      item.appendChild(dot);
      var label = names && names[g];
      if (label && typeof label === "object") {
        Object.keys(label).forEach(function (lang) {
          var s = document.createElement("span");
          s.className = lang; s.lang = lang; s.textContent = label[lang];
          item.appendChild(s);
        });
      } else {
        item.appendChild(document.createTextNode(label || g));
      }
      container.appendChild(item);
    });
  }

  global.TieinGraph = { draw: draw, legend: legend, palette: PALETTE };
})(window);

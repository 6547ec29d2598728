/* The product page (/v1/products/{id}/view): the neighbourhood graph (relations coloured by kind,
 * click a product to open its own page, centred on it) and a CSV download of each table. */
(function () {
  "use strict";
  Tiein.initLang();
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var center = data.product.product_id;

  function pageOf(id) { return "../" + encodeURIComponent(id) + "/view"; }

  // the graph: the product in the middle, an edge to each related product, coloured by kind
  var nodes = [{ id: center, label: data.product.title || center, group: "this", title: data.product.title }];
  var seen = {}, edges = [], colors = { "this": "#1d2430" }, names = {};
  seen[center] = true;
  data.kinds.forEach(function (k) {
    colors[k.kind] = k.color;
    names[k.kind] = { zh: k.zh, en: k.en };
    (data.related[k.kind] || []).forEach(function (r) {
      if (!seen[r.product_id]) {
        seen[r.product_id] = true;
        nodes.push({ id: r.product_id, label: r.title || r.product_id, group: k.kind,
          title: (r.title || r.product_id) + " · " + r.product_id });
      }
      edges.push({ source: center, target: r.product_id, group: k.kind,
        title: k.en + " / " + k.zh + " · " + (r.score == null ? "" : Number(r.score).toFixed(3)) });
    });
  });
  var used = {};
  edges.forEach(function (e) { used[e.group] = true; });
  var shown = {};
  Object.keys(colors).forEach(function (g) { if (used[g]) { shown[g] = colors[g]; } });
  var svg = document.getElementById("graph");
  TieinGraph.draw(svg, { nodes: nodes, edges: edges }, {
    colors: colors,
    center: center,
    layout: "radial",
    onClick: function (node) { if (node.id !== center) { location.href = pageOf(node.id); } },
  });
  TieinGraph.legend(document.getElementById("legend"), shown, names);

  // CSV of each table
  function rowsOf(kind) {
    if (kind === "bundle") {
      return {
        columns: ["role", "product_id", "title", "price", "explanation_zh", "explanation_en"],
        rows: (data.bundle || []).map(function (i) {
          return [i.role, i.product_id, i.title, i.price, i.explanation_zh, i.explanation_en];
        }),
      };
    }
    return {
      columns: ["kind", "product_id", "title", "category", "price", "score", "explanation_zh", "explanation_en", "evidence"],
      rows: (data.related[kind] || []).map(function (r) {
        return [kind, r.product_id, r.title, r.category, r.price, r.score, r.explanation_zh, r.explanation_en, r.evidence];
      }),
    };
  }
  document.querySelectorAll("button.csv[data-table]").forEach(function (b) {
    b.addEventListener("click", function () {
      var t = rowsOf(b.dataset.table);
      var safe = String(center).replace(/[^\w.-]+/g, "_");
      Tiein.download(safe + "-" + b.dataset.table + ".csv", t.columns, t.rows);
    });
  });
})();

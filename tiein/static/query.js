/* The analysts' Cypher page (/v1/query): runs one read-only query through POST /v1/cypher, shows
 * the answer as a table and, when it holds nodes, relationships or paths, as a graph (nodes by
 * their _ID, relationships from _START to _END); CSV download; the last queries are kept in this
 * browser's localStorage. */
(function () {
  "use strict";
  Tiein.initLang();
  var HISTORY_KEY = "tiein-cypher-history", HISTORY_MAX = 50;
  var $ = function (id) { return document.getElementById(id); };
  var last = null;

  // ---------------------------------------------------------------- history
  function history() {
    try { return JSON.parse(Tiein.store(HISTORY_KEY) || "[]"); } catch (e) { return []; }
  }
  function remember(query, params) {
    var h = history().filter(function (x) { return x.query !== query || x.params !== params; });
    h.unshift({ query: query, params: params, at: new Date().toISOString() });
    Tiein.store(HISTORY_KEY, JSON.stringify(h.slice(0, HISTORY_MAX)));
    showHistory();
  }
  function showHistory() {
    var list = $("history-list");
    list.textContent = "";
    history().forEach(function (x) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.textContent = x.query;
      a.title = x.params ? "params: " + x.params : "";
      a.addEventListener("click", function () { $("query").value = x.query; $("params").value = x.params || ""; $("query").focus(); });
      var when = document.createElement("span");
      when.className = "when";
      when.textContent = (x.at || "").replace("T", " ").slice(0, 16);
      li.appendChild(a); li.appendChild(when); list.appendChild(li);
    });
  }
  $("clear-history").addEventListener("click", function () { Tiein.store(HISTORY_KEY, "[]"); showHistory(); });

  // ---------------------------------------------------------------- values
  function isRel(v) { return v && typeof v === "object" && "_START" in v && "_END" in v && "_LABEL" in v; }
  function isNode(v) { return v && typeof v === "object" && "_LABEL" in v && "_ID" in v && !("_START" in v); }
  var NAME_KEYS = ["title", "name", "product_id", "scene_id", "category_id", "attribute_id", "value"];
  function nameOf(n) {
    for (var i = 0; i < NAME_KEYS.length; i++) {
      if (n[NAME_KEYS[i]] != null && n[NAME_KEYS[i]] !== "") { return String(n[NAME_KEYS[i]]); }
    }
    return n._LABEL;
  }
  function brief(v) {
    if (v === null || v === undefined) { return ""; }
    if (isNode(v)) { return "(:" + v._LABEL + " " + nameOf(v) + ")"; }
    if (isRel(v)) { return "[:" + v._LABEL + (v.score != null ? " " + Number(v.score).toFixed(3) : "") + "]"; }
    if (v && typeof v === "object" && v._NODES) {
      return v._NODES.map(function (n) { return "(" + nameOf(n) + ")"; }).join("→");
    }
    if (typeof v === "object") { return JSON.stringify(v); }
    return String(v);
  }

  // ---------------------------------------------------------------- the graph of an answer
  function graphOf(rows) {
    var nodes = {}, edges = {}, order = [];
    function walk(v) {
      if (Array.isArray(v)) { v.forEach(walk); return; }
      if (!v || typeof v !== "object") { return; }
      if (v._NODES || v._RELS) { (v._NODES || []).forEach(walk); (v._RELS || []).forEach(walk); return; }
      if (isRel(v)) {
        var id = v._ID || (v._START + ">" + v._END + ":" + v._LABEL);
        if (!edges[id]) { edges[id] = { id: id, source: v._START, target: v._END, group: v._LABEL, title: v._LABEL + " " + brief(v.score == null ? "" : v.score), value: v }; }
        return;
      }
      if (isNode(v)) {
        if (!nodes[v._ID]) { nodes[v._ID] = { id: v._ID, label: nameOf(v), group: v._LABEL, title: v._LABEL + " · " + nameOf(v), value: v }; order.push(v._ID); }
        return;
      }
      Object.keys(v).forEach(function (k) { walk(v[k]); });
    }
    rows.forEach(walk);
    Object.keys(edges).forEach(function (k) {  // an end the answer did not return: drawn as its id
      [edges[k].source, edges[k].target].forEach(function (id) {
        if (id != null && !nodes[id]) { nodes[id] = { id: id, label: "#" + id, group: "?", title: id, value: { _ID: id } }; order.push(id); }
      });
    });
    return { nodes: order.map(function (id) { return nodes[id]; }), edges: Object.keys(edges).map(function (k) { return edges[k]; }) };
  }

  function showDetails(node) {
    var box = $("details");
    box.hidden = false;
    box.textContent = "";
    var title = document.createElement("strong");
    title.textContent = node.title;
    box.appendChild(title);
    if (node.value && node.value._LABEL === "Product" && node.value.product_id != null) {
      var a = document.createElement("a");
      a.className = "nb";
      a.href = "/v1/products/" + encodeURIComponent(node.value.product_id) + "/view";
      a.innerHTML = ' · <span class="bi"><span class="zh" lang="zh">商品页</span><span class="en" lang="en">product page</span></span>';
      box.appendChild(a);
    }
    var pre = document.createElement("pre");
    pre.textContent = JSON.stringify(node.value, null, 2);
    box.appendChild(pre);
  }

  // ---------------------------------------------------------------- showing an answer
  function show(answer) {
    last = answer;
    var head = $("result").tHead, body = $("result").tBodies[0];
    head.textContent = ""; body.textContent = "";
    var tr = document.createElement("tr");
    answer.columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; tr.appendChild(th); });
    head.appendChild(tr);
    answer.rows.forEach(function (row) {
      var r = document.createElement("tr");
      row.forEach(function (v) {
        var td = document.createElement("td");
        if (typeof v === "number") { td.className = "num"; }
        td.textContent = brief(v);
        if (v && typeof v === "object") { td.title = JSON.stringify(v); }
        r.appendChild(td);
      });
      body.appendChild(r);
    });
    $("result-section").hidden = false;
    $("row-count").textContent = "(" + answer.row_count + (answer.truncated ? "+" : "") + ")";
    $("status").textContent = answer.row_count + " rows · " + Math.round(answer.elapsed_ms) + " ms · " + answer.store +
      (answer.truncated ? " · truncated at " + answer.limit + " / 已截断" : "");

    var g = graphOf(answer.rows);
    $("graph-section").hidden = g.nodes.length === 0;
    $("details").hidden = true;
    if (g.nodes.length) {
      var colors = TieinGraph.draw($("graph"), g, { onClick: showDetails });
      TieinGraph.legend($("legend"), colors);
      $("graph-count").textContent = g.nodes.length + " nodes · " + g.edges.length + " relationships";
    }
  }

  function fail(message) {
    $("error").hidden = false;
    $("error").textContent = message;
  }

  function run(ev) {
    if (ev) { ev.preventDefault(); }
    var query = $("query").value.trim(), paramsText = $("params").value.trim(), params = null;
    $("error").hidden = true;
    if (!query) { return; }
    if (paramsText) {
      try { params = JSON.parse(paramsText); } catch (e) { fail("parameters are not JSON / 参数不是 JSON: " + e.message); return; }
    }
    var body = { query: query };
    if (params) { body.params = params; }
    var limit = parseInt($("limit").value, 10);
    if (limit > 0) { body.limit = limit; }
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    var token = $("token").value || sessionStorage.getItem("tiein-token");
    if (token) { headers.Authorization = "Bearer " + token; }
    $("run").disabled = true;
    $("status").textContent = "…";
    remember(query, paramsText);
    fetch("/v1/cypher", { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (doc) { return { status: r.status, doc: doc }; });
      })
      .then(function (res) {
        $("run").disabled = false;
        if (res.status === 200) {
          if (token) { try { sessionStorage.setItem("tiein-token", token); } catch (e) { /* off */ } }
          show(res.doc);
          return;
        }
        $("status").textContent = "";
        if (res.status === 401) { $("token-row").hidden = false; }
        var err = res.doc && res.doc.error;
        fail((res.status + " " + (err ? err.code + ": " + err.message : "error")));
      })
      .catch(function (e) { $("run").disabled = false; $("status").textContent = ""; fail(String(e)); });
  }

  $("query-form").addEventListener("submit", run);
  $("query").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { run(ev); }
  });
  $("examples").addEventListener("change", function () {
    if (this.value) { $("query").value = this.value; $("params").value = ""; }
  });
  $("csv").addEventListener("click", function () {
    if (last) { Tiein.download("cypher-result.csv", last.columns, last.rows); }
  });
  showHistory();
  // /v1/query?q=QUERY&params=JSON opens with that query and runs it (the product page links so)
  var search = new URLSearchParams(location.search), q = search.get("q");
  if (q) { $("query").value = q; $("params").value = search.get("params") || ""; run(); }
})();

/* What tiein's pages share: the language switch (中文 + EN / 中文 / EN, kept in localStorage) and
 * CSV downloads (UTF-8 with a BOM so Excel shows Chinese; text cells that a spreadsheet would run
 * as a formula get a leading ', as `tiein cypher --csv` does). */
(function (global) {
  "use strict";

  function store(key, value) {
    try {
      if (value === undefined) { return localStorage.getItem(key); }
      localStorage.setItem(key, value);
    } catch (e) { /* storage may be off */ }
    return null;
  }

  function initLang() {
    var buttons = document.querySelectorAll("nav.lang button");
    function show(lang) {
      document.body.classList.remove("only-zh", "only-en");
      if (lang !== "both") { document.body.classList.add("only-" + lang); }
      document.documentElement.lang = lang === "en" ? "en" : "zh";
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.lang === lang)); });
      store("tiein-lang", lang);
    }
    buttons.forEach(function (b) { b.addEventListener("click", function () { show(b.dataset.lang); }); });
    var saved = store("tiein-lang");
    if (saved === "both" || saved === "zh" || saved === "en") { show(saved); }
  }

  function cell(v) {
    if (v === null || v === undefined) { return ""; }
    if (typeof v === "object") { v = JSON.stringify(v); }
    else if (typeof v !== "string") { return String(v); }
    if (/^[=+\-@\t\r]/.test(v)) { v = "'" + v; }
    return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }

  function toCsv(columns, rows) {
    return "\ufeff" + [columns].concat(rows).map(function (r) { return r.map(cell).join(","); }).join("\r\n") + "\r\n";
  }

  function download(name, columns, rows) {
    var blob = new Blob([toCsv(columns, rows)], { type: "text/csv;charset=utf-8" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  }

  global.Tiein = { initLang: initLang, toCsv: toCsv, download: download, store: store };
})(window);

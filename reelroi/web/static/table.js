/* reelroi pages: the sortable, filterable table (RR.Table), with unfinished cohort figures marked. */
(function () {
  "use strict";
  var RR = window.RR;
  var t = RR.t, el = RR.el, kindOf = RR.kindOf, fmtCell = RR.fmtCell, colLabel = RR.colLabel, num = RR.num;
  var other = RR.other;

  /* spec: {columns: [col...], rows: [...], totals: {...}|null, rowAttrs: fn(row)->{}, flagRoi: bool,
   *        filterInput: element, countEl: element, defaultSort: {col, dir}} */
  function Table(tableEl, spec) {
    this.el = tableEl;
    this.spec = spec;
    this.sort = spec.defaultSort || null;
    this.filter = "";
    var self = this;
    if (spec.filterInput) {
      spec.filterInput.addEventListener("input", function () { self.filter = spec.filterInput.value; self.renderBody(); });
      this.filter = spec.filterInput.value || "";
    }
    this.render();
  }
  Table.prototype.set = function (spec) {
    var keepSort = this.sort && spec.columns.indexOf(this.sort.col) >= 0;
    var input = this.spec.filterInput;
    this.spec = spec;
    this.spec.filterInput = this.spec.filterInput || input;
    if (!keepSort) this.sort = spec.defaultSort || null;
    this.render();
  };
  Table.prototype.render = function () {
    var self = this;
    var spec = this.spec;
    var thead = el("thead");
    var tr = el("tr");
    spec.columns.forEach(function (col) {
      var kind = kindOf(col);
      var sorted = self.sort && self.sort.col === col ? self.sort.dir : null;
      var th = el("th", {
        "data-col": col,
        "class": (kind === "text" ? "" : "num") + " sortable",
        "aria-sort": sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : "none",
        tabindex: "0",
        scope: "col",
        title: colLabel(col, 0) + " · " + colLabel(col, 1)
      }, [
        el("span", { "class": "th-main" }, [
          colLabel(col),
          el("span", { "class": "sort-ind", "aria-hidden": "true", text: sorted === "asc" ? "▲" : sorted === "desc" ? "▼" : "↕" })
        ]),
        el("span", { "class": "th-sub", text: colLabel(col, other()) })
      ]);
      var click = function () { self.toggleSort(col); };
      th.addEventListener("click", click);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); click(); } });
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    this.el.innerHTML = "";
    this.el.appendChild(thead);
    this.tbody = el("tbody");
    this.el.appendChild(this.tbody);
    if (spec.totals) {
      var tfoot = el("tfoot");
      var ft = el("tr", { "class": "totals-row", "data-row": "totals" });
      spec.columns.forEach(function (col, i) {
        var v = spec.totals[col];
        var text = i === 0 ? t("totals") : (v === undefined ? "" : fmtCell(col, v));
        ft.appendChild(self.cell(col, i === 0 ? null : v, text, spec.totals));
      });
      tfoot.appendChild(ft);
      this.el.appendChild(tfoot);
    }
    this.renderBody();
  };
  /* A figure the row names in its `unfinished` list (SPEC 5: that cohort day has not ended at as_of). */
  function isUnfinished(row, col) {
    return !!(row && row.unfinished && row.unfinished.indexOf(col) >= 0);
  }

  Table.prototype.cell = function (col, v, text, row) {
    var kind = kindOf(col);
    var cls = kind === "text" ? "" : "num";
    var attrs = { "data-col": col };
    if (v !== undefined && v !== null) attrs["data-value"] = String(v);
    if (isUnfinished(row, col)) {
      cls += " unfinished";   /* app.css adds the "*" after the figure, outside its text */
      attrs["data-unfinished"] = "true";
      attrs.title = t("unfinished_tip");
    }
    if (kind === "roi" && this.spec.flagRoi && v !== null && v !== undefined) {
      var n = Number(v);
      cls += n < 1 ? " roi-low" : " roi-ok";
      if (n < 1 && !attrs.title) attrs.title = t("sub_below");
    }
    if ((col === "refunds") && Number(v) > 0) cls += " neg";
    if ((col === "net" || col === "commission") && Number(v) < 0) cls += " neg";
    attrs["class"] = cls.trim() || null;
    var td = el("td", attrs);
    if (kind === "roi" && this.spec.flagRoi && v !== null && v !== undefined) {
      td.appendChild(el("span", { "class": "roi-pill", text: text }));
    } else if (col === "share") {
      var pct = Math.max(0, Math.min(1, Number(v) || 0));
      td.appendChild(el("span", { "class": "pct-bar", "aria-hidden": "true" }, [el("i", { style: "width:" + (pct * 100).toFixed(1) + "%" })]));
      td.appendChild(document.createTextNode(text));
    } else {
      td.textContent = text;
    }
    return td;
  };
  Table.prototype.toggleSort = function (col) {
    var kind = kindOf(col);
    if (this.sort && this.sort.col === col) this.sort = { col: col, dir: this.sort.dir === "asc" ? "desc" : "asc" };
    else this.sort = { col: col, dir: kind === "text" ? "asc" : "desc" };
    this.render();
  };
  Table.prototype.visibleRows = function () {
    var spec = this.spec;
    var rows = spec.rows.slice();
    var f = (this.filter || "").trim().toLowerCase();
    if (f) {
      rows = rows.filter(function (r) {
        return spec.columns.some(function (col) {
          var v = r[col];
          if (v === null || v === undefined) return false;
          return String(v).toLowerCase().indexOf(f) >= 0 || fmtCell(col, v).toLowerCase().indexOf(f) >= 0;
        });
      });
    }
    if (this.sort) {
      var col = this.sort.col, dir = this.sort.dir === "asc" ? 1 : -1, kind = kindOf(col);
      rows.sort(function (a, b) {
        var x = a[col], y = b[col];
        if (kind !== "text") {
          x = num(x); y = num(y);
          if (x === null && y === null) return 0;
          if (x === null) return 1;   /* empty ROI always last */
          if (y === null) return -1;
          return (x - y) * dir;
        }
        return String(x == null ? "" : x).localeCompare(String(y == null ? "" : y), undefined, { numeric: true }) * dir;
      });
    }
    return rows;
  };
  Table.prototype.renderBody = function () {
    var self = this;
    var spec = this.spec;
    var rows = this.visibleRows();
    this.tbody.innerHTML = "";
    if (!rows.length) {
      this.tbody.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: String(spec.columns.length), text: t("no_data") })]));
    }
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) {
      var tr = el("tr", spec.rowAttrs ? spec.rowAttrs(r) : {});
      spec.columns.forEach(function (col) { tr.appendChild(self.cell(col, r[col], fmtCell(col, r[col]), r)); });
      frag.appendChild(tr);
    });
    this.tbody.appendChild(frag);
    if (spec.countEl) {
      spec.countEl.textContent = rows.length === spec.rows.length
        ? t("rows_n", { n: rows.length }) : t("rows_nm", { n: rows.length, m: spec.rows.length });
    }
  };

  RR.Table = Table;
  RR.isUnfinished = isUnfinished;
})();

/* The buyer page's report tables: the cohort matrix as a heat map, the two-dimensional pivot, the
 * period-over-period lines on the cards, and the export buttons. Pure rendering of API answers;
 * buyer.js fetches them. Loaded before buyer.js. */
(function () {
  "use strict";
  var RR = window.RR;
  var el = RR.el, t = RR.t;

  /* ---------------------------------------------------------------- cohort matrix
   * /api/v1/roi/matrix: {days, group_by, meta, rows: [{<keys>, cohort_date, spend, new_users,
   * cells: [{day, revenue, roi, final}]}]}. A cell whose day has not ended is left empty and marked
   * (class "pending"): its revenue so far is not the D-N figure yet (SPEC 5). */
  var MATRIX_FIELDS = ["cohort_date", "spend", "new_users", "cells", "unfinished"];
  var KEY_ORDER = ["source_kind", "source_id", "name", "platform", "drama_id", "buyer_id"];

  function matrixKeys(rows, hide) {
    var seen = {};
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (MATRIX_FIELDS.indexOf(k) < 0) seen[k] = 1; }); });
    return Object.keys(seen).filter(function (k) { return (hide || []).indexOf(k) < 0; }).sort(function (a, b) {
      var i = KEY_ORDER.indexOf(a), j = KEY_ORDER.indexOf(b);
      return (i < 0 ? 99 : i) - (j < 0 ? 99 : j);
    });
  }

  /* Background of a cell through the CSSOM (the policy forbids style attributes in markup). */
  function heat(metric, value, max) {
    var v = RR.num(value);
    if (v == null) return "";
    if (metric === "roi") {
      if (v < 1) return "background-color:rgba(239,68,68," + (0.08 + 0.32 * (1 - Math.max(0, v))).toFixed(3) + ")";
      return "background-color:rgba(16,185,129," + (0.12 + 0.6 * Math.min(1, (v - 1) / 1.5)).toFixed(3) + ")";
    }
    return "background-color:rgba(79,70,229," + (0.06 + 0.5 * (max ? Math.max(0, v) / max : 0)).toFixed(3) + ")";
  }

  function headCell(label, sub, attrs) {
    return el("th", Object.assign({ scope: "col" }, attrs || {}), [
      el("span", { "class": "th-main", text: label }), sub ? el("span", { "class": "th-sub", text: sub }) : null
    ]);
  }

  function renderMatrix(tableEl, answer, metric, hide) {
    var rows = answer.rows || [];
    var days = answer.days || [];
    var keys = matrixKeys(rows, hide);
    var max = 0;
    rows.forEach(function (r) { (r.cells || []).forEach(function (c) { var v = RR.num(c[metric]); if (c.final && v > max) max = v; }); });
    tableEl.innerHTML = "";
    tableEl.setAttribute("data-metric", metric);
    tableEl.setAttribute("data-group", answer.group_by || "");
    var head = el("tr", {}, keys.concat(["cohort_date", "spend", "new_users"]).map(function (k) {
      return headCell(RR.colLabel(k), RR.colLabel(k, RR.other()), { "data-col": k, "class": RR.kindOf(k) === "text" ? "" : "num" });
    }).concat(days.map(function (d) { return headCell("D" + d, null, { "data-day": String(d), "class": "num day" }); })));
    tableEl.appendChild(el("thead", {}, [head]));
    var body = el("tbody");
    if (!rows.length) body.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: String(keys.length + 3 + days.length), text: t("no_data") })]));
    rows.forEach(function (r) {
      var tr = el("tr", { "data-key": keys.map(function (k) { return r[k] == null ? "" : r[k]; }).join("|"), "data-cohort": r.cohort_date });
      keys.concat(["cohort_date", "spend", "new_users"]).forEach(function (k) {
        var kind = RR.kindOf(k);
        tr.appendChild(el("td", { "data-col": k, "data-value": r[k] == null ? null : String(r[k]), "class": kind === "text" ? "" : "num",
          text: RR.fmtCell(k, r[k]) }));
      });
      var byDay = {};
      (r.cells || []).forEach(function (c) { byDay[c.day] = c; });
      days.forEach(function (d) {
        var c = byDay[d] || { day: d, revenue: null, roi: null, final: false };
        var attrs = { "data-day": String(d), "data-final": String(!!c.final), "data-roi": c.roi == null ? "" : String(c.roi),
          "data-revenue": c.revenue == null ? "" : String(c.revenue) };
        if (!c.final) {
          attrs["class"] = "num cell pending";
          attrs.title = t("unfinished_tip");
          tr.appendChild(el("td", attrs));
          return;
        }
        var v = c[metric];
        attrs["class"] = "num cell" + (metric === "roi" && v != null && Number(v) < 1 ? " roi-low" : "");
        attrs.style = heat(metric, v, max) || null;
        tr.appendChild(el("td", attrs, [metric === "roi" ? RR.fmtRoi(v) : RR.fmtMoney(v)]));
      });
      body.appendChild(tr);
    });
    tableEl.appendChild(body);
    return rows.length;
  }

  /* ---------------------------------------------------------------- pivot
   * Rows of /api/v1/roi?group_by=<a>,<b> laid out as a cross table: a down, b across. */
  var DIM = {
    date: { key: "cohort_date", label: function (r) { return r.cohort_date; } },
    campaign: { key: "source_id", label: function (r) { return r.name || r.source_id; } },
    drama: { key: "drama_id", label: function (r) { return r.drama_id; } },
    platform: { key: "platform", label: function (r) { return RR.valueLabel(r.platform); } },
    source: { key: "source_id", label: function (r) { return r.source_id; } }
  };

  function renderPivot(tableEl, rows, dims, metric) {
    var a = DIM[dims[0]], b = DIM[dims[1]];
    var down = [], across = [], labels = {}, cells = {};
    rows.forEach(function (r) {
      var x = String(r[a.key] == null ? "" : r[a.key]), y = String(r[b.key] == null ? "" : r[b.key]);
      if (down.indexOf(x) < 0) down.push(x);
      if (across.indexOf(y) < 0) { across.push(y); labels[y] = b.label(r) || y; }
      labels["a:" + x] = a.label(r) || x;
      cells[x + "\u0000" + y] = r;
    });
    var sortKey = function (s) { return s; };
    down.sort(function (p, q) { return sortKey(p).localeCompare(sortKey(q), undefined, { numeric: true }); });
    across.sort(function (p, q) { return String(labels[p]).localeCompare(String(labels[q]), undefined, { numeric: true }); });
    tableEl.innerHTML = "";
    tableEl.setAttribute("data-dims", dims.join(","));
    tableEl.setAttribute("data-metric", metric);
    var head = el("tr", {}, [headCell(t("gb_" + dims[0]) + " × " + t("gb_" + dims[1]), RR.colLabel(metric))].concat(across.map(function (y) {
      return headCell(labels[y], y !== labels[y] ? y : null, { "data-across": y, "class": "num" });
    })));
    tableEl.appendChild(el("thead", {}, [head]));
    var body = el("tbody");
    if (!down.length) body.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: "2", text: t("no_data") })]));
    down.forEach(function (x) {
      var tr = el("tr", { "data-down": x }, [el("th", { scope: "row", text: labels["a:" + x] })]);
      across.forEach(function (y) {
        var r = cells[x + "\u0000" + y];
        var v = r ? r[metric] : undefined;
        var late = r && RR.isUnfinished(r, metric);
        var cls = "num" + (late ? " unfinished" : "") + (RR.kindOf(metric) === "roi" && v != null && Number(v) < 1 ? " roi-low" : "");
        tr.appendChild(el("td", { "data-across": y, "data-value": v == null ? null : String(v), "class": cls,
          "data-unfinished": late ? "true" : null, title: late ? t("unfinished_tip") : null,
          text: r ? RR.fmtCell(metric, v) : "" }));
      });
      body.appendChild(tr);
    });
    tableEl.appendChild(body);
  }

  /* ---------------------------------------------------------------- period over period
   * /api/v1/roi/compare: {period, meta, current: {from, to, <totals>}, previous: {...}}; one line per
   * card: this period's figure, the change and the previous figure. */
  function change(cur, prev) {
    var c = RR.num(cur), p = RR.num(prev);
    if (c == null || p == null || p === 0) return null;
    return (c - p) / Math.abs(p);
  }

  function renderDelta(card, key, cmp, format) {
    var box = card.querySelector(".delta");
    if (!box) return;
    box.innerHTML = "";
    if (!cmp) { box.hidden = true; return; }
    var cur = cmp.current[key], prev = cmp.previous[key];
    var d = change(cur, prev);
    box.hidden = false;
    box.setAttribute("data-current", cur == null ? "" : String(cur));
    box.setAttribute("data-previous", prev == null ? "" : String(prev));
    box.title = t("cmp_range", { a: cmp.current.from + " ~ " + cmp.current.to, b: cmp.previous.from + " ~ " + cmp.previous.to });
    box.appendChild(el("span", { "class": "cur-label", text: t("cmp_cur_" + cmp.period) }));
    box.appendChild(el("b", { "class": "cur", text: format(cur) }));
    box.appendChild(el("span", { "class": "chg " + (d == null ? "flat" : d >= 0 ? "up" : "down"),
      text: d == null ? "—" : (d >= 0 ? "▲ " : "▼ ") + RR.fmtPct(Math.abs(d)) }));
    box.appendChild(el("span", { "class": "prev", text: t("cmp_prev_" + cmp.period) + " " + format(prev) }));
  }

  /* ---------------------------------------------------------------- exports
   * Buttons for CSV for Excel (UTF-8 BOM) and .xlsx, beside a table; fetch(format) gives the
   * download's path, params and file name. */
  function exportButtons(box, fetch) {
    if (!box || box._wired) return;
    box._wired = true;
    [["csv", true, "download_bom"], ["xlsx", false, "download_xlsx"]].forEach(function (f) {
      var btn = el("button", { type: "button", "class": "btn", "data-format": f[0] + (f[1] ? "-bom" : "") }, [
        "⤓ ", el("span", { "data-i18n": f[2], text: t(f[2]) })
      ]);
      btn.addEventListener("click", function () {
        var job = fetch(f[0]);
        job.params.format = f[0];
        if (f[1]) job.params.bom = "true";
        btn.disabled = true;
        RR.download(job.path, job.params, job.name + "." + f[0])
          .catch(function (err) { RR.showError(err.message); })
          .then(function () { btn.disabled = false; });
      });
      box.appendChild(btn);
    });
  }

  window.BuyerReports = { renderMatrix: renderMatrix, renderPivot: renderPivot, renderDelta: renderDelta,
    exportButtons: exportButtons, matrixKeys: matrixKeys };
})();

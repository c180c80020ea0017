/* The buyer page (buyer.html); a file of its own so the Content-Security-Policy can forbid inline script. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var me = null;
  var data = null; /* {group, roi, daily, curve} of the last load */
  var table = null;
  var seq = 0;

  var KEYS = {
    source_date: ["source_kind", "source_id", "cohort_date"],
    source: ["source_kind", "source_id"],
    campaign: ["source_kind", "source_id", "name", "platform", "drama_id", "buyer_id"],
    drama: ["drama_id"],
    platform: ["platform"],
    buyer: ["buyer_id"],
    date: ["cohort_date"]
  };
  var METRICS = ["spend", "revenue_total", "roi_d0", "roi_d7", "roi_total", "new_users", "payers",
    "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7", "commission"];
  var FUNNEL = ["spend", "impressions", "clicks", "ctr", "new_users", "click_to_user", "cost_per_user", "payers",
    "payer_rate", "cost_per_payer", "arpu", "arppu", "revenue_total", "roi_total"];
  var DIM_KEYS = { date: "date", campaign: "campaign", drama: "drama", platform: "platform", source: "source" };

  /* Key columns of a grouping; a two-dimensional one ("date,campaign") has the keys of both. */
  function keysOf(group) {
    var out = [];
    group.split(",").forEach(function (d) {
      (KEYS[DIM_KEYS[d] || d] || []).forEach(function (k) { if (out.indexOf(k) < 0) out.push(k); });
    });
    return out;
  }

  function isAdmin() { return me && me.role === "admin"; }

  function visibleKeys(keys) {
    return keys.filter(function (k) {
      if (isAdmin()) return true;
      return k !== "source_kind" && k !== "buyer_id";   /* a buyer only ever sees their own campaigns */
    });
  }
  /* The funnel columns exist once the API sends them; until then the choice is off. */
  function hasFunnel(answer) { return !!(answer.totals && "impressions" in answer.totals); }

  function columns(group, set, answer) {
    var chosen = set === "funnel" && hasFunnel(answer) ? FUNNEL : METRICS;
    var metrics = chosen.filter(function (c) { return isAdmin() || c !== "commission"; });
    return visibleKeys(keysOf(group)).concat(metrics);
  }

  function filters() {
    var p = {
      from: $("f-from").value, to: $("f-to").value, platform: $("f-platform").value,
      drama_id: $("f-drama").value, source_id: $("f-source").value
    };
    if (isAdmin()) { p.source_kind = $("f-source-kind").value; p.buyer_id = $("f-buyer").value; }
    return p;
  }
  function withGroup(p, g) { var o = {}; Object.keys(p).forEach(function (k) { o[k] = p[k]; }); o.group_by = g; return o; }

  function setCard(id, value, display, meta, state) {
    var card = $(id);
    var v = card.querySelector(".value");
    v.textContent = display;
    v.setAttribute("data-value", value == null ? "" : String(value));
    card.classList.toggle("is-low", state === "low");
    card.classList.toggle("is-ok", state === "ok");
    var m = card.querySelector(".meta");
    m.innerHTML = "";
    (meta || []).forEach(function (part) { m.appendChild(part); });
  }
  function metaText(label, value) {
    var s = document.createElement("span");
    s.appendChild(document.createTextNode(label + " "));
    var b = document.createElement("b"); b.textContent = value; s.appendChild(b);
    return s;
  }
  function badge(roi) {
    var b = document.createElement("span");
    if (roi == null) { b.className = "badge none"; b.textContent = RR.t("sub_no_spend"); }
    else if (Number(roi) < 1) { b.className = "badge low"; b.textContent = RR.t("sub_below"); }
    else { b.className = "badge ok"; b.textContent = RR.t("sub_breakeven"); }
    return b;
  }
  function sep() { return document.createTextNode(" · "); }
  function ratio(a, b) { a = RR.num(a); b = RR.num(b); return a != null && b ? a / b : null; }
  function money2(x) { return x == null ? "—" : RR.fmtMoney(x.toFixed(2)); }

  function renderCards() {
    var T = data.roi.totals || {};
    var roiState = function (r) { return r == null ? null : Number(r) < 1 ? "low" : "ok"; };
    var days = data.daily.length;
    setCard("card-spend", T.spend, RR.fmtMoney(T.spend),
      days ? [metaText(RR.t("sub_cpi"), money2(ratio(T.spend, T.new_users)))] : []);
    setCard("card-revenue", T.revenue_total, RR.fmtMoney(T.revenue_total),
      [metaText(RR.t("refunds_note"), (Number(T.refunds) > 0 ? "−" : "") + RR.fmtMoney(T.refunds))]);
    setCard("card-roi-d0", T.roi_d0, RR.fmtRoi(T.roi_d0), [badge(T.roi_d0)], roiState(T.roi_d0));
    markUnfinished($("card-roi-d0").querySelector(".value"), totalsUnfinished("roi_d0"));
    var d7 = metaText(RR.t("sub_d7"), RR.fmtRoi(T.roi_d7));
    markUnfinished(d7, totalsUnfinished("roi_d7"));
    setCard("card-roi-total", T.roi_total, RR.fmtRoi(T.roi_total), [d7, sep(), badge(T.roi_total)], roiState(T.roi_total));
    setCard("card-new-users", T.new_users, RR.fmtCount(T.new_users),
      [metaText(RR.t("sub_cpi"), money2(ratio(T.spend, T.new_users)))]);
    setCard("card-payers", T.payers, RR.fmtCount(T.payers),
      [metaText(RR.t("sub_payrate"), RR.fmtPct(ratio(T.payers, T.new_users))), sep(),
       metaText(RR.t("sub_arppu"), money2(ratio(T.revenue_iap, T.payers)))]);
  }

  /* A figure of the selection is not final while that figure of any of its cohorts is not (SPEC 5). */
  function totalsUnfinished(col) {
    var T = data.roi.totals || {};
    if (T.unfinished) return T.unfinished.indexOf(col) >= 0;
    return data.daily.some(function (r) { return RR.isUnfinished(r, col); });
  }
  function markUnfinished(node, late) {
    node.classList.toggle("unfinished", late);
    if (late) { node.setAttribute("data-unfinished", "true"); node.title = RR.t("unfinished_tip"); }
    else { node.removeAttribute("data-unfinished"); node.removeAttribute("title"); }
  }

  var DELTAS = [["card-spend", "spend", RR.fmtMoney], ["card-revenue", "revenue_total", RR.fmtMoney],
    ["card-roi-d0", "roi_d0", RR.fmtRoi], ["card-roi-total", "roi_total", RR.fmtRoi],
    ["card-new-users", "new_users", RR.fmtCount], ["card-payers", "payers", RR.fmtCount]];

  function renderDeltas() {
    DELTAS.forEach(function (d) { BuyerReports.renderDelta($(d[0]), d[1], data.compare, d[2]); });
  }

  function renderCharts() {
    var daily = data.daily;
    Charts.combo($("chart-daily"), {
      labels: daily.map(function (r) { return r.cohort_date; }),
      labelFormat: function (d) { return d.slice(5); },
      bars: [
        { key: "spend", name: RR.colLabel("spend"), color: "#94a3b8", values: daily.map(function (r) { return RR.num(r.spend); }) },
        { key: "revenue_total", name: RR.colLabel("revenue_total"), color: "#10b981", values: daily.map(function (r) { return RR.num(r.revenue_total); }) }
      ],
      line: { name: RR.colLabel("roi_total"), color: "#f59e0b", values: daily.map(function (r) { return RR.num(r.roi_total); }) },
      ref2: 1, ref2Label: RR.t("breakeven"),
      yFormat: RR.fmtCompact, y2Format: function (v) { return v.toFixed(v < 10 ? 1 : 0); },
      tipFormat: function (v) { return v == null ? "—" : RR.fmtMoney(v.toFixed(2)); },
      lineTipFormat: function (v) { return v.toFixed(4); },
      emptyText: RR.t("no_data"), height: 270
    });

    var curve = data.curve;
    var offsets = { d0: 0, d1: 1, d3: 3, d7: 7, total: null };
    var points = curve.points.map(function (p) {   /* before the API sent offsets, the day names give them */
      return "offset" in p ? p : Object.assign({ offset: offsets[p.day] }, p);
    });
    Charts.curve($("chart-curve"), {
      points: points,
      dayLabel: function (p) { return p.offset == null ? RR.t("total_label") : "D" + p.offset; },
      color: "#4f46e5", ref: 1, refLabel: RR.t("breakeven"),
      yFormat: function (v) { return v.toFixed(1); },
      pointFormat: function (v) { return Number(v).toFixed(2); },
      extra: function (p) {
        var rows = [["#10b981", RR.t("card_revenue"), RR.fmtMoney(p.revenue)]];
        if (p.cohorts != null) rows.push(["#94a3b8", RR.t("curve_points", { n: p.cohorts }), ""]);
        return rows;
      },
      emptyText: Number(curve.spend) ? RR.t("curve_none") : RR.t("curve_no_spend"), height: 270
    });
    var young = points.filter(function (p) { return p.offset != null && p.roi == null && Number(curve.spend); });
    $("curve-note").hidden = !young.length;
    $("curve-note").textContent = young.length ? RR.t("curve_young", { days: young.map(function (p) { return "D" + p.offset; }).join(", ") }) : "";

    var T = data.roi.totals || {};
    var iap = RR.num(T.revenue_iap) || 0, iaa = RR.num(T.revenue_iaa) || 0;
    Charts.donut($("chart-split"), {
      parts: [
        { name: RR.colLabel("revenue_iap"), value: iap, color: "#4f46e5", text: RR.fmtMoney(T.revenue_iap) },
        { name: RR.colLabel("revenue_iaa"), value: iaa, color: "#06b6d4", text: RR.fmtMoney(T.revenue_iaa) }
      ],
      centerTop: iap + iaa ? (iap / (iap + iaa) * 100).toFixed(0) + "%" : "—",
      centerBottom: "IAP",
      note: Number(T.refunds) > 0 ? RR.t("refunds_note") + " −" + RR.fmtMoney(T.refunds) : null,
      emptyText: RR.t("no_data")
    });
  }

  function renderTable() {
    var g = data.group;
    var groupOpt = document.querySelector('#f-group option[value="' + g + '"]');
    $("group-label").textContent = groupOpt ? groupOpt.textContent : g;
    var keys = keysOf(g);
    var funnel = $("f-cols").querySelector('option[value="funnel"]');
    funnel.disabled = !hasFunnel(data.roi);
    var spec = {
      columns: columns(g, $("f-cols").value, data.roi),
      rows: data.roi.rows,
      totals: data.roi.totals,
      flagRoi: true,
      filterInput: $("table-filter"),
      countEl: $("row-count"),
      defaultSort: g.split(",")[0] === "date" ? { col: "cohort_date", dir: "asc" } : null,
      rowAttrs: function (r) {
        var a = { "data-key": keys.map(function (k) { return r[k] == null ? "" : r[k]; }).join("|") };
        if (r.source_id != null) a["data-source-id"] = r.source_id;
        if (r.buyer_id != null) a["data-buyer"] = r.buyer_id;
        return a;
      }
    };
    if (!table) table = new RR.Table($("roi-table"), spec); else table.set(spec);
    $("roi-table").setAttribute("data-group", g);
  }

  function renderPeriod() {
    var dates = data.daily.map(function (r) { return r.cohort_date; }).sort();
    var from = $("f-from").value || dates[0], to = $("f-to").value || dates[dates.length - 1];
    $("period").textContent = from && to ? from + " ~ " + to : RR.t("all_dates");
  }

  function renderAll() {
    if (!data) return;
    RR.renderMeta("report-meta", data.roi.meta);
    renderCards();
    renderDeltas();
    renderCharts();
    renderTable();
    renderPeriod();
    renderMatrix();
    renderPivot();
  }

  var MATRIX_DAYS = "0,1,2,3,7,14,30";

  /* An optional report: its answer, or the reason it is missing (shown in its panel, never made up). */
  function settle(promise) {
    return promise.then(function (answer) { return { answer: answer }; }, function (err) {
      if (err.status === 401) throw err;
      return { error: err.status === 404 ? RR.t("report_missing") : (err.message || RR.t("err_generic")) };
    });
  }

  function note(panel, text) {
    var box = $(panel).querySelector(".panel-note");
    if (!box) {
      box = RR.el("div", { "class": "panel-note", role: "status" });
      $(panel).querySelector(".panel-head").after(box);
    }
    box.hidden = !text;
    box.textContent = text || "";
  }

  function renderMatrix() {
    var m = data.matrix;
    note("matrix-panel", m.error);
    $("matrix-table").hidden = !!m.error;
    if (m.error) return;
    var n = BuyerReports.renderMatrix($("matrix-table"), m.answer, $("m-metric").value, isAdmin() ? [] : ["buyer_id", "source_kind"]);
    $("matrix-count").textContent = RR.t("rows_n", { n: n });
  }

  function renderPivot() {
    var pv = data.pivot;
    note("pivot-panel", pv.error);
    $("pivot-table").hidden = !!pv.error;
    if (pv.error) return;
    BuyerReports.renderPivot($("pivot-table"), pv.answer.rows, pv.dims, $("p-metric").value);
  }

  function load() {
    var p = filters();
    var g = $("f-group").value;
    var dims = $("p-dims").value;
    var period = $("f-compare").value;
    var mine = ++seq;
    RR.showError(null);
    RR.setBusy(true);
    $("apply").disabled = true;
    var matrixParams = withGroup(p, $("m-group").value);
    matrixParams.days = MATRIX_DAYS;
    var compareParams = withGroup(p, null);
    delete compareParams.group_by; delete compareParams.from; delete compareParams.to;
    compareParams.period = period;
    Promise.all([
      RR.api("/api/v1/roi", withGroup(p, g)),
      g === "date" ? null : RR.api("/api/v1/roi", withGroup(p, "date")),
      RR.api("/api/v1/roi/curve", p),
      settle(RR.api("/api/v1/roi/matrix", matrixParams)),
      settle(RR.api("/api/v1/roi", withGroup(p, dims))),
      period ? settle(RR.api("/api/v1/roi/compare", compareParams)) : null
    ]).then(function (res) {
      if (mine !== seq) return;
      var daily = (res[1] || res[0]).rows.slice().sort(function (a, b) { return a.cohort_date < b.cohort_date ? -1 : 1; });
      data = { group: g, roi: res[0], daily: daily, curve: res[2], matrix: res[3],
        pivot: Object.assign({ dims: dims.split(",") }, res[4]), compare: res[5] && res[5].answer ? res[5].answer : null };
      var cmpNote = $("compare-note");
      cmpNote.hidden = !(res[5] && res[5].error);
      cmpNote.textContent = cmpNote.hidden ? "" : RR.t("compare_missing") + " (" + res[5].error + ")";
      renderAll();
      document.body.setAttribute("data-loaded", String(mine));
    }).catch(function (err) {
      if (mine !== seq) return;
      RR.showError(err.message || RR.t("err_generic"));
      document.body.setAttribute("data-loaded", "error");
    }).then(function () {
      if (mine !== seq) return;
      RR.setBusy(false);
      $("apply").disabled = false;
    });
  }

  function fillList(id, items) {
    var dl = $(id);
    dl.innerHTML = "";
    items.forEach(function (it) {
      if (!it.value) return;
      var o = document.createElement("option");
      o.value = it.value;
      if (it.label) o.label = it.label;
      dl.appendChild(o);
    });
  }

  /* Choices for the drama / source / buyer boxes, from what this token can see. */
  function loadLookups() {
    var base = isAdmin() ? { source_kind: "" } : {};
    RR.api("/api/v1/roi", withGroup(base, "campaign")).then(function (res) {
      var dramas = {}, buyers = {};
      res.rows.forEach(function (r) { if (r.drama_id) dramas[r.drama_id] = 1; if (r.buyer_id) buyers[r.buyer_id] = 1; });
      fillList("dl-sources", res.rows.map(function (r) { return { value: r.source_id, label: r.name || RR.valueLabel(r.source_kind) }; }));
      fillList("dl-dramas", Object.keys(dramas).sort().map(function (d) { return { value: d }; }));
      fillList("dl-buyers", Object.keys(buyers).sort().map(function (d) { return { value: d }; }));
    }).catch(function () { /* the boxes still accept typed ids */ });
  }

  $("filters").addEventListener("submit", function (e) { e.preventDefault(); load(); });
  $("f-group").addEventListener("change", load);
  $("f-platform").addEventListener("change", load);
  $("f-source-kind").addEventListener("change", load);
  $("f-compare").addEventListener("change", load);
  $("m-group").addEventListener("change", load);
  $("p-dims").addEventListener("change", load);
  $("m-metric").addEventListener("change", function () { if (data) renderMatrix(); });
  $("p-metric").addEventListener("change", function () { if (data) renderPivot(); });
  $("f-cols").addEventListener("change", function () { if (data) renderTable(); });
  $("reset").addEventListener("click", function () {
    ["f-from", "f-to", "f-drama", "f-source", "f-buyer", "table-filter"].forEach(function (id) { $(id).value = ""; });
    $("f-platform").value = "";
    $("f-source-kind").value = "campaign";
    $("f-group").value = "campaign";
    if (table) table.filter = "";
    load();
  });
  $("csv-download").addEventListener("click", function () {
    var btn = $("csv-download");
    btn.disabled = true;
    var g = $("f-group").value;
    RR.download("/api/v1/roi", withGroup(Object.assign(filters(), { format: "csv" }), g), "reelroi-roi-" + g + ".csv")
      .catch(function (err) { RR.showError(err.message); })
      .then(function () { btn.disabled = false; });
  });
  BuyerReports.exportButtons(document.querySelector('.downloads[data-table="roi"]'), function () {
    var g = $("f-group").value;
    return { path: "/api/v1/roi", params: withGroup(filters(), g), name: "reelroi-roi-" + g.replace(",", "-") };
  });
  BuyerReports.exportButtons(document.querySelector('.downloads[data-table="matrix"]'), function () {
    var q = withGroup(filters(), $("m-group").value);
    q.days = MATRIX_DAYS;
    return { path: "/api/v1/roi/matrix", params: q, name: "reelroi-matrix-" + q.group_by };
  });
  BuyerReports.exportButtons(document.querySelector('.downloads[data-table="pivot"]'), function () {
    var d = $("p-dims").value;
    return { path: "/api/v1/roi", params: withGroup(filters(), d), name: "reelroi-roi-" + d.replace(",", "-") };
  });
  RR.onLang(renderAll);

  RR.guard(["buyer", "admin"]).then(function (m) {
    me = m;
    RR.applyI18n();
    loadLookups();
    load();
    BuyerPostbacks.load(m);
  }).catch(function (err) { RR.showError(err.message || RR.t("err_generic")); });
})();

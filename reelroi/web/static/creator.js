/* The creator page (creator.html); a file of its own so the Content-Security-Policy can forbid inline script.
 * Cards, the daily chart and the commission tables; the statements are creator-statements.js, the
 * creator's own words creator-kit.js. The clawback card and the red bars are the commission that
 * refunds took back (/api/v1/commission/clawback), not the refunded sales. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var me = null, data = null, seq = 0;
  var tables = {};

  function isAdmin() { return me && me.role === "admin"; }
  function filters() {
    var p = { from: $("f-from").value, to: $("f-to").value, plan_id: $("f-plan").value };
    if (isAdmin()) p.creator_id = $("f-creator").value;
    return p;
  }
  function withGroup(p, g) { var o = {}; Object.keys(p).forEach(function (k) { o[k] = p[k]; }); o.group_by = g; return o; }

  function setCard(id, value, display, meta) {
    var card = $(id);
    var v = card.querySelector(".value");
    v.textContent = display;
    v.setAttribute("data-value", value == null ? "" : String(value));
    var m = card.querySelector(".meta");
    m.innerHTML = "";
    if (meta) {
      var s = document.createElement("span");
      s.appendChild(document.createTextNode(meta[0] + " "));
      var b = document.createElement("b"); b.textContent = meta[1]; s.appendChild(b);
      m.appendChild(s);
    }
  }
  function ratio(a, b) { a = RR.num(a); b = RR.num(b); return a != null && b ? a / b : null; }

  function renderCards() {
    var T = data.totals, C = data.clawback.totals;
    var active = data.plans.filter(function (r) { return Number(r.gross) || Number(r.refunds); }).length;
    setCard("card-commission", T.commission, RR.fmtMoney(T.commission), [RR.t("sub_rate"), RR.fmtPct(ratio(T.commission, T.net))]);
    setCard("card-gross", T.gross, RR.fmtMoney(T.gross), null);
    /* the commission taken back (negative), with the refunded sales it came from beside it */
    setCard("card-clawback", C.clawback, RR.fmtMoney(C.clawback),
      Number(C.refunds) ? [CR.t("sub_refunded_sales"), RR.fmtMoney(C.refunds)] : [CR.t("sub_clawback_none"), ""]);
    $("card-clawback").classList.toggle("is-low", Number(C.clawback) < 0);
    setCard("card-net", T.net, RR.fmtMoney(T.net), null);
    setCard("card-plans", data.plans.length, RR.fmtCount(data.plans.length), [RR.t("sub_plans_active"), RR.fmtCount(active)]);
  }

  function renderChart() {
    var days = data.days;
    var back = {};
    data.clawback.rows.forEach(function (r) { back[r.date] = r.clawback; });
    Charts.combo($("chart-commission"), {
      labels: days.map(function (r) { return r.date; }),
      labelFormat: function (d) { return d.slice(5); },
      bars: [
        { key: "commission", name: CR.t("series_commission_net"), color: "#4f46e5", values: days.map(function (r) { return RR.num(r.commission); }) },
        { key: "clawback", name: CR.t("series_clawback"), color: "#f87171", values: days.map(function (r) { return RR.num(back[r.date]) || 0; }) }
      ],
      yFormat: RR.fmtCompact,
      tipFormat: function (v) { return v == null ? "—" : RR.fmtMoney(v.toFixed(2)); },
      emptyText: RR.t("no_data"), height: 250
    });
  }

  function table(id, spec) {
    if (!tables[id]) tables[id] = new RR.Table($(id), spec); else tables[id].set(spec);
  }

  function renderTables() {
    var T = data.totals;
    var total = RR.num(T.commission) || 0;
    var plans = data.plans.map(function (r) {
      var o = Object.assign({}, r);
      o.share = total ? (RR.num(r.commission) || 0) / total : null;
      return o;
    });
    var planCols = (isAdmin() ? ["creator_id"] : []).concat(["plan_id", "gross", "refunds", "net", "commission", "share"]);
    if (isAdmin()) planCols = ["plan_id", "creator_id", "gross", "refunds", "net", "commission", "share"];
    table("plan-table", {
      columns: planCols, rows: plans, totals: Object.assign({ share: total ? 1 : null }, T), countEl: $("plan-count"),
      defaultSort: { col: "commission", dir: "desc" },
      rowAttrs: function (r) { return { "data-plan": r.plan_id, "data-creator": r.creator_id }; }
    });
    table("commission-day-table", {
      columns: ["date", "gross", "refunds", "net", "commission"], rows: data.days, totals: T, countEl: $("day-count"),
      defaultSort: { col: "date", dir: "asc" },
      rowAttrs: function (r) { return { "data-date": r.date }; }
    });
    table("detail-table", {
      columns: ["date", "plan_id", "creator_id", "gross", "refunds", "net", "commission"], rows: data.detail, totals: T,
      filterInput: $("table-filter"), countEl: $("detail-count"),
      defaultSort: { col: "date", dir: "asc" },
      rowAttrs: function (r) { return { "data-plan": r.plan_id, "data-creator": r.creator_id, "data-date": r.date }; }
    });
  }

  function renderPeriod() {
    var dates = data.days.map(function (r) { return r.date; }).sort();
    var from = $("f-from").value || dates[0], to = $("f-to").value || dates[dates.length - 1];
    $("period").textContent = from && to ? from + " ~ " + to : RR.t("all_dates");
  }

  /* The report's policy and as_of (the shared RR.renderMeta); before the API sends meta, what /me says. */
  function renderPolicy() {
    var meta = data.meta || { currency: me.currency, tz: me.tz };
    if (RR.renderMeta) RR.renderMeta($("report-meta"), meta);
  }

  function renderAll() {
    CR.applyWords();
    if (!data) return;
    renderPolicy(); renderCards(); renderChart(); renderTables(); renderPeriod();
  }

  function load() {
    var p = filters();
    var mine = ++seq;
    RR.showError(null);
    RR.setBusy(true);
    $("apply").disabled = true;
    Promise.all([
      RR.api("/api/v1/commission", withGroup(p, "day")),
      RR.api("/api/v1/commission", withGroup(p, "plan")),
      RR.api("/api/v1/commission", withGroup(p, "detail")),
      RR.api("/api/v1/commission/clawback", p)
    ]).then(function (res) {
      if (mine !== seq) return;
      data = { days: res[0].rows, totals: res[0].totals, meta: res[0].meta, plans: res[1].rows, detail: res[2].rows,
        clawback: res[3] };
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

  /* The plan and creator choices: every plan this token can see, over all dates. */
  function loadLookups() {
    return RR.api("/api/v1/commission", { group_by: "plan" }).then(function (res) {
      var sel = $("f-plan");
      var keep = sel.value;
      while (sel.options.length > 1) sel.remove(1);
      var creators = {};
      res.rows.forEach(function (r) {
        creators[r.creator_id] = 1;
        var o = document.createElement("option");
        o.value = r.plan_id;
        o.textContent = r.plan_id + (isAdmin() ? " · " + r.creator_id : "");
        sel.appendChild(o);
      });
      sel.value = keep;
      var dl = $("dl-creators");
      dl.innerHTML = "";
      Object.keys(creators).sort().forEach(function (c) { var o = document.createElement("option"); o.value = c; dl.appendChild(o); });
    }).catch(function () { /* the page still works without the list */ });
  }

  function loadStatements() { return CreatorStatements.load(isAdmin() ? $("f-creator").value : null); }

  $("filters").addEventListener("submit", function (e) { e.preventDefault(); load(); loadStatements(); });
  $("f-plan").addEventListener("change", load);
  $("reset").addEventListener("click", function () {
    ["f-from", "f-to", "f-creator", "table-filter"].forEach(function (id) { $(id).value = ""; });
    $("f-plan").value = "";
    if (tables["detail-table"]) tables["detail-table"].filter = "";
    load();
    loadStatements();
  });
  $("csv-download").addEventListener("click", function () {
    var btn = $("csv-download");
    btn.disabled = true;
    RR.download("/api/v1/commission", withGroup(Object.assign(filters(), { format: "csv" }), "detail"), "reelroi-commission-detail.csv")
      .catch(function (err) { RR.showError(err.message); })
      .then(function () { btn.disabled = false; });
  });
  RR.onLang(renderAll);
  RR.onLang(CreatorStatements.redraw);

  RR.guard(["creator", "admin"]).then(function (m) {
    me = m;
    RR.applyI18n();
    CR.applyWords();
    CreatorStatements.init(m);
    loadLookups();
    load();
    loadStatements();
  }).catch(function (err) { RR.showError(err.message || RR.t("err_generic")); });
})();

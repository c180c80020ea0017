/* The creator page's statements (分账, SPEC 5): the list, one statement's lines and its orders.
 * Reads /api/v1/statements, /{id} and /{id}/orders; the CSV is the API's own export.
 * Markers for tests and people waiting: body[data-statements-loaded] after the list,
 * #statement-detail[data-statement] once a statement and its orders are shown. */
(function () {
  "use strict";
  var RR = window.RR, CR = window.CR;
  var el = RR.el;
  var $ = function (id) { return document.getElementById(id); };
  var me = null, list = [], open = null, line = null, seq = 0, listSeq = 0;

  function isAdmin() { return me && me.role === "admin"; }

  function money(key) { return { key: key, kind: "money" }; }

  function renderList() {
    var cols = [
      { key: "period", text: function (r) { return r.period + (r.forced ? " · " + CR.t("forced") : ""); } },
      { key: "dates", value: function (r) { return r.period_start + "~" + r.period_end; },
        text: function (r) { return r.period_start + " ~ " + r.period_end; } }
    ];
    if (isAdmin()) cols.push({ key: "creator_id" });
    cols = cols.concat([money("gross"), money("refunds"), money("net"), money("commission"),
      { key: "currency" }, { key: "lines", kind: "count" }, { key: "orders", kind: "count" },
      { key: "closed_at", kind: "time" },
      { key: "action", cell: function (r) {
        return el("button", { type: "button", "class": "btn btn-small", "data-open": r.statement_id, text: CR.t("open"),
          onclick: function () { show(r.statement_id); } });
      } }]);
    CR.grid($("statement-list"), cols, list, {
      empty: CR.t("no_statements"),
      rowAttrs: function (r) {
        return { "data-statement": r.statement_id, "data-creator": r.creator_id,
          "class": open && open.statement.statement_id === r.statement_id ? "selected" : null };
      }
    });
    $("statement-count").textContent = RR.t("rows_n", { n: list.length });
  }

  function renderFacts(h) {
    var facts = [["creator_id", h.creator_id], ["period", h.period], ["dates", h.period_start + " ~ " + h.period_end],
      ["currency", h.currency], ["tz", h.tz], ["as_of", CR.fmtTime(h.as_of)], ["closed_at", CR.fmtTime(h.closed_at)],
      ["commission", RR.fmtMoney(h.commission) + " " + h.currency]];
    var box = $("statement-facts");
    box.innerHTML = "";
    facts.forEach(function (f) {
      box.appendChild(el("span", { "class": "fact", "data-key": f[0] }, [el("span", { "class": "fact-k", text: CR.t(f[0]) }),
        el("b", { "class": "fact-v", text: f[1] })]));
    });
    if (h.forced) box.appendChild(el("span", { "class": "fact fact-forced", text: CR.t("forced") }));
  }

  function renderLines() {
    var lines = open.lines;
    CR.grid($("statement-lines"), [
      { key: "line_no", kind: "count" },
      { key: "kind", text: CR.fmtKind },
      { key: "period" },
      { key: "plan_id" }, { key: "drama_id" },
      { key: "commission_rate", kind: "rate" },
      money("gross"), money("refunds"), money("net"), money("commission"),
      { key: "action", cell: function (r) {
        return el("button", { type: "button", "class": "btn btn-small", "data-line-orders": String(r.line_no),
          text: CR.t("line_orders_btn"), onclick: function () { line = r.line_no; renderOrders(); } });
      } }
    ], lines, {
      totals: open.statement,
      rowAttrs: function (r) {
        return { "data-line": String(r.line_no), "data-kind": r.kind, "data-period": r.period,
          "class": (r.kind === "adjustment" ? "adjustment" : "") + (line === r.line_no ? " selected" : "") || null };
      }
    });
  }

  function renderOrders() {
    var rows = open.orders.filter(function (o) { return line === null || o.line_no === line; });
    $("orders-title").textContent = line === null ? CR.t("orders_title") : CR.t("orders_of_line", { n: line });
    $("orders-all").hidden = line === null;
    CR.grid($("statement-orders"), [
      { key: "line_no", kind: "count" },
      { key: "kind", text: CR.fmtKind },
      { key: "order_id" },
      { key: "paid_at", kind: "time" },
      { key: "drama_id" },
      money("amount"), money("refunds"), money("net"),
      { key: "commission_rate", kind: "rate" },
      money("commission"),
      { key: "linked_refunds", text: function (r) { return CR.fmtRefunds(r.linked_refunds); } }
    ], rows, {
      rowAttrs: function (r) { return { "data-order": r.order_id, "data-line": String(r.line_no) }; }
    });
    $("orders-count").textContent = RR.t("rows_n", { n: rows.length });
    renderLines();  /* the selected line */
  }

  function renderDetail() {
    var box = $("statement-detail");
    if (!open) { box.hidden = true; box.removeAttribute("data-statement"); return; }
    box.hidden = false;
    $("statement-title").textContent = open.statement.statement_id;
    renderFacts(open.statement);
    renderOrders();
    box.setAttribute("data-statement", open.statement.statement_id);
  }

  function show(id) {
    var mine = ++seq;
    $("statement-detail").removeAttribute("data-statement");
    RR.showError(null);
    var base = "/api/v1/statements/" + encodeURIComponent(id);
    Promise.all([RR.api(base), RR.api(base + "/orders")]).then(function (res) {
      if (mine !== seq) return;
      open = { statement: res[0].statement, lines: res[0].lines, orders: res[1].orders };
      line = null;
      renderList();
      renderDetail();
      $("statement-detail").scrollIntoView({ block: "nearest" });
    }).catch(function (err) {
      if (mine === seq) RR.showError(err.message || RR.t("err_generic"));
    });
  }

  /* The statements this token may read; an admin's creator filter narrows them. */
  function load(creatorId) {
    var mine = ++listSeq;
    return RR.api("/api/v1/statements", isAdmin() ? { creator_id: creatorId } : {}).then(function (res) {
      if (mine !== listSeq) return;
      list = res.statements;
      if (open && !list.some(function (s) { return s.statement_id === open.statement.statement_id; })) open = null;
      renderList();
      renderDetail();
      document.body.setAttribute("data-statements-loaded", String(mine));
    }).catch(function (err) {
      if (mine !== listSeq) return;
      RR.showError(err.message || RR.t("err_generic"));
      document.body.setAttribute("data-statements-loaded", "error");
    });
  }

  function redraw() {
    CR.applyWords();
    if (!me) return;
    renderList();
    renderDetail();
  }

  function init(who) {
    me = who;
    $("statement-close").addEventListener("click", function () { open = null; line = null; renderList(); renderDetail(); });
    $("orders-all").addEventListener("click", function () { line = null; renderOrders(); });
    $("statement-csv").addEventListener("click", function () {
      if (!open) return;
      var btn = $("statement-csv"), id = open.statement.statement_id;
      btn.disabled = true;
      RR.download("/api/v1/statements/" + encodeURIComponent(id) + "/orders", { format: "csv" },
        "reelroi-statement-" + id + "-orders.csv")
        .catch(function (err) { RR.showError(err.message); })
        .then(function () { btn.disabled = false; });
    });
  }

  window.CreatorStatements = { init: init, load: load, show: show, redraw: redraw };
})();

/* The creator page's own words and a small table for statements (loaded after the shared files).
 * The shared dictionary (i18n.js) has the words every page uses; these are only the creator's:
 * the clawback card and the statements (分账). Elements carry data-cr="key" for them, so the
 * shared RR.applyI18n leaves them alone and CR.applyWords fills them. */
(function () {
  "use strict";
  var RR = window.RR;
  var el = RR.el;

  var WORDS = {
    card_clawback: ["退款扣回佣金", "Commission taken back"],
    sub_refunded_sales: ["退款金额", "Refunded sales"],
    sub_clawback_none: ["无退款", "No refunds"],
    series_commission_net: ["当日佣金（已扣除退款）", "Day's commission (net of take-backs)"],
    series_clawback: ["其中退款扣回", "Of which taken back by refunds"],
    chart_commission_sub: ["红色为当天退款扣回的佣金（佣金率 × 退款金额），已计入当日佣金",
      "Red: commission taken back by that day's refunds (rate × refunded amount), already in the day's commission"],
    statements: ["结算单", "Statements"],
    statements_sub: ["每期结算后不再改变；之后到达的数据以调整行计入下一期结算单",
      "A closed statement never changes; what arrives later shows as adjustment lines on the next one"],
    no_statements: ["尚无已结算的结算单", "No statements closed yet"],
    open: ["查看", "Open"],
    close_detail: ["收起", "Close"],
    statement: ["结算单", "Statement"],
    lines_title: ["结算行（按推广计划）", "Lines (per plan)"],
    orders_title: ["订单明细", "Order detail"],
    orders_of_line: ["第 {n} 行的订单", "Orders of line {n}"],
    all_orders: ["全部订单", "All orders"],
    line_orders_btn: ["订单", "Orders"],
    kind_period: ["本期", "This period"],
    kind_adjustment: ["调整 · {p}", "Adjustment · {p}"],
    forced: ["提前结算", "closed early"],
    no_refunds: ["—", "—"],
    /* columns */
    period: ["结算周期", "Period"],
    dates: ["日期范围", "Dates"],
    creator_id: ["达人", "Creator"],
    gross: ["充值流水", "Gross"],
    refunds: ["退款", "Refunds"],
    net: ["净流水", "Net"],
    commission: ["佣金", "Commission"],
    lines: ["行数", "Lines"],
    orders: ["订单数", "Orders"],
    closed_at: ["结算时间", "Closed at"],
    as_of: ["数据截至", "As of"],
    currency: ["币种", "Currency"],
    tz: ["时区", "Time zone"],
    kind: ["类型", "Kind"],
    plan_id: ["推广计划", "Plan"],
    drama_id: ["剧目", "Drama"],
    commission_rate: ["佣金率", "Rate"],
    line_no: ["行", "Line"],
    order_id: ["订单号", "Order"],
    paid_at: ["支付时间", "Paid at"],
    amount: ["支付金额", "Amount"],
    linked_refunds: ["关联退款", "Linked refunds"],
    action: ["", ""]
  };

  function t(key, vars) {
    var e = WORDS[key];
    if (!e) return RR.t(key, vars);
    var s = e[RR.lang() === "en" ? 1 : 0];
    return vars ? s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k] != null ? vars[k] : ""; }) : s;
  }
  function applyWords(root) {
    (root || document).querySelectorAll("[data-cr]").forEach(function (n) { n.textContent = t(n.getAttribute("data-cr")); });
  }

  /* A commission rate exactly as a percentage: "0.155" -> "15.5%" (string arithmetic, no float). */
  function fmtRate(rate) {
    if (rate === null || rate === undefined || rate === "") return "—";
    var s = String(rate), neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var parts = s.split("."), frac = (parts[1] || "") + "00";
    var whole = (parts[0] + frac.slice(0, 2)).replace(/^0+(?=\d)/, "");
    var rest = frac.slice(2).replace(/0+$/, "");
    return (neg ? "−" : "") + whole + (rest ? "." + rest : "") + "%";
  }
  /* "2026-11-01T00:30:00+08:00" -> "2026-11-01 00:30:00 +08:00" (the instant as the API states it). */
  function fmtTime(v) {
    if (!v) return "—";
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(.*)$/.exec(String(v));
    return m ? m[1] + " " + m[2] + (m[3] ? " " + m[3] : "") : String(v);
  }
  function fmtKind(row) {
    return row.kind === "adjustment" ? t("kind_adjustment", { p: row.period }) : t("kind_period");
  }
  function fmtRefunds(list) {
    if (!list || !list.length) return t("no_refunds");
    return list.map(function (r) { return fmtTime(r.refunded_at) + " " + RR.fmtMoney(r.amount) + " (" + r.refund_event_id + ")"; }).join("; ");
  }

  var FORMATS = {
    money: RR.fmtMoney,
    count: RR.fmtCount,
    rate: fmtRate,
    time: fmtTime,
    text: function (v) { return v === null || v === undefined || v === "" ? "—" : String(v); }
  };

  /* A plain table: cols [{key, kind, label?, value?: fn(row), text?: fn(row), cell?: fn(row) -> node}].
   * Every cell has data-col and data-value (the API's value), so tests compare it with the API. */
  function grid(tableEl, cols, rows, opts) {
    opts = opts || {};
    var head = el("tr", {}, cols.map(function (c) {
      return el("th", { "data-col": c.key, scope: "col", "class": c.kind === "money" || c.kind === "count" ? "num" : null,
        text: c.label ? c.label() : t(c.key) });
    }));
    var body = el("tbody");
    if (!rows.length) body.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: String(cols.length), text: opts.empty || RR.t("no_data") })]));
    rows.forEach(function (r) {
      body.appendChild(el("tr", opts.rowAttrs ? opts.rowAttrs(r) : {}, cols.map(function (c) { return cell(c, r); })));
    });
    tableEl.innerHTML = "";
    tableEl.appendChild(el("thead", {}, [head]));
    tableEl.appendChild(body);
    if (opts.totals) {
      tableEl.appendChild(el("tfoot", {}, [el("tr", { "class": "totals-row", "data-row": "totals" }, cols.map(function (c, i) {
        if (i === 0) return el("td", { text: RR.t("totals") });
        return c.kind === "money" && opts.totals[c.key] !== undefined ? cell(c, opts.totals) : el("td");
      }))]));
    }
  }
  function cell(c, r) {
    var v = c.value ? c.value(r) : r[c.key];
    var attrs = { "data-col": c.key, "data-value": v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)) };
    var cls = c.kind === "money" || c.kind === "count" ? "num" : "";
    if (c.kind === "money" && Number(v) < 0) cls += " neg";
    if (cls) attrs["class"] = cls.trim();
    if (c.cell) return el("td", attrs, [c.cell(r)]);
    return el("td", Object.assign(attrs, { text: c.text ? c.text(r) : FORMATS[c.kind || "text"](v) }));
  }

  window.CR = { t: t, applyWords: applyWords, grid: grid, fmtRate: fmtRate, fmtTime: fmtTime, fmtKind: fmtKind, fmtRefunds: fmtRefunds };
})();

/* The buyer page's postback card (SPEC 7, 回传): per campaign, the conversions reported to the ad
 * platforms against the true ones, from /api/v1/postbacks/summary. The API scopes it: a buyer's token
 * reads only its own campaigns, an admin's every campaign; nobody else reaches this page (RR.guard).
 * True activations and pays are the ROI report's users and payments; 扣量 (held back by the
 * campaign's postback rule) is shown per part of the rule. Loaded before buyer.js, which calls
 * BuyerPostbacks.load() once the token is known. */
(function () {
  "use strict";
  var RR = window.RR;
  var el = RR.el, t = RR.t;

  RR.addWords({
    pb_title: ["回传 vs 真实转化", "Conversions reported to platforms vs true"],
    pb_sub: ["每个广告计划：真实激活与付费（与 ROI 报表同口径）对比回传给广告平台的条数；扣量 = 按回传规则未回传",
      "Per campaign: true activations and pays (as the ROI report counts them) against the postbacks the platform got; held back = kept by the campaign's postback rule"],
    pb_true_activations: ["真实激活", "True activations"],
    pb_sent_activations: ["已回传激活", "Activations sent"],
    pb_true_pays: ["真实付费", "True pays"],
    pb_sent_pays: ["已回传付费", "Pays sent"],
    pb_held: ["扣量", "Held back"],
    pb_failed: ["回传失败", "Failed"],
    pb_in_flight: ["待回传", "On the way"],
    pb_none: ["暂无回传记录", "No postbacks yet"],
    pb_missing: ["无法读取回传记录", "The postback ledger could not be read"]
  }, {
    campaign_id: ["计划 ID", "Campaign id"],
    activations: ["真实激活", "True activations"],
    sent_activations: ["已回传激活", "Activations sent"],
    pays: ["真实付费", "True pays"],
    sent_pays: ["已回传付费", "Pays sent"],
    pay_share: ["付费回传率", "Pays sent share"],
    pay_value: ["真实付费金额", "True pay amount"],
    sent_pay_value: ["已回传金额", "Amount sent"],
    held_ratio: ["扣量·比例", "Held: ratio"],
    held_min_amount: ["扣量·最低金额", "Held: min amount"],
    held_kind: ["扣量·类型", "Held: kind"],
    in_flight: ["待回传", "On the way"],
    failed: ["回传失败", "Failed"],
    superseded: ["已失效", "Superseded"]
  }, {
    count: ["activations", "sent_activations", "pays", "sent_pays", "held_ratio", "held_min_amount", "held_kind",
      "in_flight", "failed", "superseded"],
    money: ["pay_value", "sent_pay_value"],
    pct: ["pay_share"]
  });

  var COLUMNS = ["name", "campaign_id", "platform", "buyer_id", "activations", "sent_activations", "pays", "sent_pays",
    "pay_share", "pay_value", "sent_pay_value", "held_ratio", "held_min_amount", "held_kind", "in_flight", "failed",
    "superseded"];
  var HELD = ["held_ratio", "held_min_amount", "held_kind"];
  var answer = null, error = null, table = null, isAdmin = false;

  /* What the card shows beside the API's figures: the pays sent over the true ones, and the ones on the way. */
  function derived(r) {
    var out = Object.assign({}, r);
    out.in_flight = (Number(r.pending) || 0) + (Number(r.sending) || 0);
    out.pay_share = Number(r.pays) ? String(Number(r.sent_pays) / Number(r.pays)) : null;
    if (!out.name) out.name = r.campaign_id;
    return out;
  }

  function chip(key, label, value) {
    return el("span", { "class": "meta-item", "data-key": key, "data-value": String(value) }, [
      el("span", { "class": "meta-k", text: label }), el("b", { "class": "meta-v", text: RR.fmtCount(value) })
    ]);
  }

  function renderTotals(box, T) {
    box.innerHTML = "";
    var held = HELD.reduce(function (s, k) { return s + (Number(T[k]) || 0); }, 0);
    [["activations", "pb_true_activations", T.activations], ["sent_activations", "pb_sent_activations", T.sent_activations],
      ["pays", "pb_true_pays", T.pays], ["sent_pays", "pb_sent_pays", T.sent_pays], ["held", "pb_held", held],
      ["in_flight", "pb_in_flight", T.in_flight], ["failed", "pb_failed", T.failed]].forEach(function (c) {
      box.appendChild(chip(c[0], t(c[1]), c[2]));
    });
  }

  function render() {
    var panel = document.getElementById("postbacks-panel");
    if (!panel || (!answer && !error)) return;
    var note = panel.querySelector(".panel-note");
    var box = document.getElementById("postbacks-totals");
    var tableEl = document.getElementById("postbacks-table");
    note.hidden = !error && answer.rows.length > 0;
    note.textContent = error ? t("pb_missing") + " (" + error + ")" : (answer.rows.length ? "" : t("pb_none"));
    tableEl.hidden = box.hidden = !!error;
    panel.setAttribute("data-state", error ? "error" : "loaded");
    if (error) return;
    var totals = derived(answer.totals || {});
    renderTotals(box, totals);
    var spec = {
      columns: COLUMNS.filter(function (c) { return isAdmin || c !== "buyer_id"; }),
      rows: answer.rows.map(derived),
      totals: answer.rows.length ? totals : null,
      rowAttrs: function (r) { return { "data-campaign": r.campaign_id }; },
      defaultSort: { col: "campaign_id", dir: "asc" }
    };
    if (!table) table = new RR.Table(tableEl, spec); else table.set(spec);
  }

  /* The card's answer for this token; an error stays in the card (the rest of the page does not depend on it). */
  function load(me) {
    isAdmin = !!(me && me.role === "admin");
    return RR.api("/api/v1/postbacks/summary").then(function (a) { answer = a; error = null; }, function (err) {
      answer = null;   /* a 401 has already sent the page to sign-in (RR.api) */
      error = err.status === 404 ? t("report_missing") : (err.message || t("err_generic"));
    }).then(render);
  }

  RR.onLang(render);
  window.BuyerPostbacks = { load: load, render: render, derived: derived };
})();

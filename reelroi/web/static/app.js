/* reelroi pages: shared helpers (token, API calls, formatting, i18n, tables).
 * Everything is local: no CDN, no external fonts, no third-party code.
 * The token lives in localStorage and is only ever sent in the Authorization header. */
(function () {
  "use strict";

  var TOKEN_KEY = "reelroi.token";
  var LANG_KEY = "reelroi.lang";

  /* ---------------------------------------------------------------- i18n */
  var DICT = {
    brand_tag: ["短剧投放归因", "Short-drama attribution"],
    sign_out: ["退出登录", "Sign out"],
    loading: ["加载中…", "Loading…"],
    apply: ["查询", "Apply"],
    reset: ["重置", "Reset"],
    from: ["开始日期", "From"],
    to: ["结束日期", "To"],
    all: ["全部", "All"],
    all_dates: ["全部日期", "All dates"],
    download_csv: ["下载 CSV", "Download CSV"],
    filter_table: ["筛选表格…", "Filter table…"],
    rows_n: ["{n} 行", "{n} rows"],
    rows_nm: ["{n} / {m} 行", "{n} of {m} rows"],
    no_data: ["暂无数据", "No data"],
    totals: ["合计", "Total"],
    nav_buyer: ["投放看板", "Buyer dashboard"],
    nav_creator: ["达人佣金", "Creator commission"],
    role_admin: ["管理员", "Admin"],
    role_buyer: ["投手", "Buyer"],
    role_creator: ["达人", "Creator"],
    err_generic: ["请求失败", "Request failed"],
    err_forbidden: ["无权查看：", "Not allowed: "],
    err_bad: ["参数有误：", "Bad request: "],
    err_network: ["无法连接服务器", "Cannot reach the server"],
    err_expired: ["登录已失效，请重新登录", "Your session has expired, please sign in again"],
    period: ["统计区间", "Period"],
    amounts_note: ["金额为报表币种，保留两位小数", "Amounts in the reporting currency"],

    /* sign-in */
    signin_title: ["登录", "Sign in"],
    signin_lead: ["粘贴管理员、投手或达人的访问令牌", "Paste your admin, buyer or creator access token"],
    token_label: ["访问令牌", "Access token"],
    signin_btn: ["登录", "Sign in"],
    signin_hint: ["令牌只保存在本浏览器（localStorage），仅通过 Authorization 请求头发送，不会出现在网址中。",
      "The token stays in this browser (localStorage) and is only sent in the Authorization header, never in a URL."],
    signin_cli: ["没有令牌？请管理员运行：", "No token? Ask an admin to run:"],
    signin_bad: ["令牌无效或已吊销", "Invalid or revoked token"],
    signin_empty: ["请先粘贴令牌", "Paste a token first"],
    signed_in_as: ["当前登录：", "Signed in as "],
    continue_btn: ["进入", "Continue"],

    /* buyer */
    buyer_title: ["投放 ROI 看板", "Campaign ROI dashboard"],
    platform: ["平台", "Platform"],
    drama: ["剧目", "Drama"],
    source: ["来源", "Source"],
    source_ph: ["计划/来源 ID", "Campaign / source id"],
    drama_ph: ["剧目 ID", "Drama id"],
    buyer_ph: ["投手 ID", "Buyer id"],
    group_by: ["维度", "Group by"],
    source_kind: ["来源类型", "Source kind"],
    card_spend: ["消耗", "Spend"],
    card_revenue: ["收入", "Revenue"],
    card_roi_d0: ["首日ROI", "D0 ROI"],
    card_roi_total: ["累计ROI", "Cumulative ROI"],
    card_new_users: ["新增用户", "New users"],
    card_payers: ["付费用户", "Payers"],
    sub_cpi: ["获客成本", "Cost per user"],
    sub_total_net: ["累计净收入（含退款扣减）", "Net of refunds, all dates"],
    sub_d7: ["7日ROI", "D7 ROI"],
    sub_payrate: ["付费率", "Pay rate"],
    sub_arppu: ["ARPPU", "ARPPU"],
    sub_breakeven: ["已回本", "Above break-even"],
    sub_below: ["未回本", "Below break-even"],
    sub_no_spend: ["无消耗", "No spend"],
    chart_daily: ["消耗 vs 收入（按日）", "Spend vs revenue by day"],
    chart_daily_sub: ["按同期群日期：当天的消耗与这批用户的累计收入", "By cohort date: the day's spend and that cohort's revenue to date"],
    chart_curve: ["同期群 ROI 曲线", "Cohort ROI curve"],
    chart_curve_sub: ["D0 → D7 → 累计，虚线为回本线 1.0", "D0 → D7 → total; dashed line = break-even 1.0"],
    chart_split: ["内购 vs 广告收入", "IAP vs IAA split"],
    chart_split_sub: ["付费解锁（IAP）与看广告解锁（IAA）", "Paid unlocks (IAP) vs ad unlocks (IAA)"],
    table_title: ["ROI 明细", "ROI table"],
    breakeven: ["回本线", "Break-even"],
    roi: ["ROI", "ROI"],
    refunds_note: ["退款", "Refunds"],
    curve_no_spend: ["所选范围没有消耗，无法计算 ROI", "No spend in this selection: ROI is undefined"],
    gb_source_date: ["来源 × 日期", "Source × date"],
    gb_source: ["来源", "Source"],
    gb_campaign: ["广告计划", "Campaign"],
    gb_drama: ["剧目", "Drama"],
    gb_platform: ["平台", "Platform"],
    gb_buyer: ["投手", "Buyer"],
    gb_date: ["日期", "Date"],
    low_roi_legend: ["红色 = ROI 低于 1（未回本）", "Red = ROI below 1 (not paid back)"],

    /* creator */
    creator_title: ["达人佣金", "Creator commission"],
    card_commission: ["佣金", "Commission"],
    card_gross: ["充值流水", "Gross payments"],
    card_refunds: ["退款扣回", "Refunds taken back"],
    card_net: ["净流水", "Net"],
    card_plans: ["推广计划", "Plans"],
    sub_rate: ["综合佣金率", "Effective rate"],
    sub_refund_rate: ["占流水", "Of gross"],
    sub_plans_active: ["有收入的计划数", "Plans with money"],
    chart_commission: ["每日佣金", "Commission by day"],
    chart_commission_sub: ["退款当天扣回佣金，可能为负", "Refunds are taken back on the day they happen, so a day can be negative"],
    by_day: ["按日", "By day"],
    by_plan: ["按推广计划", "By plan"],
    detail: ["明细（达人 × 计划 × 日期）", "Detail (creator × plan × day)"],
    creator_ph: ["达人 ID", "Creator id"],
    plan_ph: ["推广计划 ID", "Plan id"],
    share: ["佣金占比", "Share"],
    plan: ["推广计划", "Plan"]
  };

  var COLS = {
    source_kind: ["来源类型", "Source kind"],
    source_id: ["来源 ID", "Source id"],
    cohort_date: ["日期", "Cohort date"],
    name: ["名称", "Name"],
    platform: ["平台", "Platform"],
    drama_id: ["剧目", "Drama"],
    buyer_id: ["投手", "Buyer"],
    spend: ["消耗", "Spend"],
    new_users: ["新增用户", "New users"],
    payers: ["付费用户", "Payers"],
    revenue_iap: ["内购收入", "IAP revenue"],
    revenue_iaa: ["广告收入", "IAA revenue"],
    refunds: ["退款", "Refunds"],
    revenue_d0: ["首日收入", "D0 revenue"],
    revenue_d1: ["次日收入", "D1 revenue"],
    revenue_d3: ["3日收入", "D3 revenue"],
    revenue_d7: ["7日收入", "D7 revenue"],
    revenue_total: ["累计收入", "Total revenue"],
    commission: ["佣金", "Commission"],
    roi_d0: ["首日ROI", "D0 ROI"],
    roi_d7: ["7日ROI", "D7 ROI"],
    roi_total: ["累计ROI", "Cumulative ROI"],
    creator_id: ["达人", "Creator"],
    plan_id: ["推广计划", "Plan"],
    date: ["日期", "Date"],
    gross: ["充值流水", "Gross"],
    net: ["净流水", "Net"],
    share: ["佣金占比", "Share"]
  };

  var VALUES = {
    douyin: ["抖音", "Douyin"],
    kuaishou: ["快手", "Kuaishou"],
    tencent: ["腾讯广告", "Tencent"],
    tiktok: ["TikTok", "TikTok"],
    other: ["其他", "Other"],
    campaign: ["广告投放", "Campaign"],
    plan: ["达人推广", "Creator plan"],
    organic: ["自然量", "Organic"]
  };

  var MONEY = ["spend", "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3",
    "revenue_d7", "revenue_total", "commission", "gross", "net"];
  var COUNTS = ["new_users", "payers"];
  var ROIS = ["roi_d0", "roi_d7", "roi_total"];

  var langListeners = [];

  function lang() {
    var v = null;
    try { v = localStorage.getItem(LANG_KEY); } catch (e) { v = null; }
    return v === "en" ? "en" : "zh";
  }
  function idx() { return lang() === "en" ? 1 : 0; }
  function other() { return lang() === "en" ? 0 : 1; }

  function fill(s, vars) {
    if (!vars) return s;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k] != null ? vars[k] : ""; });
  }
  function t(key, vars) {
    var e = DICT[key];
    return e ? fill(e[idx()], vars) : key;
  }
  function colLabel(col, which) {
    var e = COLS[col];
    if (!e) return col;
    return e[which == null ? idx() : which];
  }
  function valueLabel(v) {
    var e = VALUES[v];
    return e ? e[idx()] : v;
  }

  function applyI18n(root) {
    root = root || document;
    document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
    root.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    root.querySelectorAll("[data-i18n-ph]").forEach(function (el) {
      el.setAttribute("placeholder", t(el.getAttribute("data-i18n-ph")));
    });
    root.querySelectorAll("[data-i18n-title]").forEach(function (el) {
      el.setAttribute("title", t(el.getAttribute("data-i18n-title")));
    });
    root.querySelectorAll("[data-i18n-value]").forEach(function (el) {
      el.textContent = valueLabel(el.getAttribute("data-i18n-value"));
    });
    var toggle = document.getElementById("lang-toggle");
    if (toggle) {
      toggle.textContent = lang() === "en" ? "中文" : "EN";
      toggle.setAttribute("aria-label", lang() === "en" ? "切换到中文" : "Switch to English");
      toggle.setAttribute("data-lang", lang());
    }
  }

  function setLang(l) {
    try { localStorage.setItem(LANG_KEY, l === "en" ? "en" : "zh"); } catch (e) { /* private mode */ }
    applyI18n();
    langListeners.forEach(function (fn) { fn(); });
  }
  function onLang(fn) { langListeners.push(fn); }

  /* ---------------------------------------------------------------- token + API */
  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function setToken(v) { localStorage.setItem(TOKEN_KEY, v); }
  function clearToken() { try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ } }

  function signOut() {
    clearToken();
    window.location.href = "/";
  }

  function ApiError(status, message, body) {
    this.status = status;
    this.message = message;
    this.body = body;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v !== undefined && v !== null && String(v).trim() !== "") q.set(k, String(v).trim());
    });
    var s = q.toString();
    return s ? "?" + s : "";
  }

  function request(path, params, opts) {
    opts = opts || {};
    var token = opts.token != null ? opts.token : getToken();
    var headers = { "Accept": opts.accept || "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path + query(params), { headers: headers, credentials: "omit", cache: "no-store" })
      .catch(function () { throw new ApiError(0, t("err_network"), null); })
      .then(function (res) {
        if (res.ok) return res;
        return res.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { body = null; }
          var msg = (body && body.error) || res.statusText || t("err_generic");
          if (res.status === 400 && body && body.details) {
            msg = t("err_bad") + body.details.map(function (d) { return d.param + ": " + d.problem; }).join("; ");
          } else if (res.status === 403) {
            msg = t("err_forbidden") + msg;
          }
          var err = new ApiError(res.status, msg, body);
          if (res.status === 401 && !opts.noRedirect) {
            clearToken();
            window.location.href = "/?expired=1";
          }
          throw err;
        });
      });
  }

  function api(path, params, opts) {
    return request(path, params, opts).then(function (res) { return res.json(); });
  }

  /* Fetch a CSV with the Authorization header and save it as a file (no token in any URL). */
  function download(path, params, fallbackName) {
    return request(path, params, { accept: "text/csv" }).then(function (res) {
      var name = fallbackName;
      var cd = res.headers.get("Content-Disposition") || "";
      var m = /filename="?([^";]+)"?/.exec(cd);
      if (m) name = m[1];
      return res.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var a = document.createElement("a");
        a.href = url;
        a.download = name;
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
        return name;
      });
    });
  }

  /* ---------------------------------------------------------------- formatting */
  function group3(intPart) {
    return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  /* "1234567.50" -> "1,234,567.50", exactly (no float rounding). */
  function fmtMoney(v) {
    if (v === null || v === undefined || v === "") return "—";
    var s = String(v);
    var neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var parts = s.split(".");
    var out = group3(parts[0]) + (parts.length > 1 ? "." + parts[1] : "");
    return (neg ? "−" : "") + out;
  }
  function fmtCount(v) {
    if (v === null || v === undefined || v === "") return "—";
    return group3(String(v));
  }
  function fmtRoi(v) {
    if (v === null || v === undefined || v === "") return "—";
    return String(v);
  }
  function fmtPct(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return (x * 100).toFixed(digits == null ? 1 : digits) + "%";
  }
  /* Compact axis numbers: 1.2万 / 12k. */
  function fmtCompact(x) {
    var a = Math.abs(x);
    var sign = x < 0 ? "−" : "";
    if (lang() === "zh") {
      if (a >= 1e8) return sign + trim(a / 1e8) + "亿";
      if (a >= 1e4) return sign + trim(a / 1e4) + "万";
      return sign + trim(a);
    }
    if (a >= 1e9) return sign + trim(a / 1e9) + "B";
    if (a >= 1e6) return sign + trim(a / 1e6) + "M";
    if (a >= 1e3) return sign + trim(a / 1e3) + "k";
    return sign + trim(a);
  }
  function trim(x) {
    var s = x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
    return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }
  function num(v) {
    if (v === null || v === undefined || v === "") return null;
    var n = Number(v);
    return isFinite(n) ? n : null;
  }
  function kindOf(col) {
    if (MONEY.indexOf(col) >= 0) return "money";
    if (COUNTS.indexOf(col) >= 0) return "count";
    if (ROIS.indexOf(col) >= 0) return "roi";
    if (col === "share") return "pct";
    return "text";
  }
  function fmtCell(col, v) {
    switch (kindOf(col)) {
      case "money": return fmtMoney(v);
      case "count": return fmtCount(v);
      case "roi": return fmtRoi(v);
      case "pct": return fmtPct(v);
      default:
        if (v === null || v === undefined || v === "") return "—";
        if (col === "platform" || col === "source_kind") return valueLabel(String(v));
        return String(v);
    }
  }

  /* ---------------------------------------------------------------- DOM helpers */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;   /* CSSOM: a style attribute would break the CSP */
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function showError(msg) {
    var box = document.getElementById("error");
    if (!box) return;
    if (!msg) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    box.textContent = msg;
  }

  function setBusy(on) {
    document.body.classList.toggle("busy", !!on);
    var b = document.getElementById("busy");
    if (b) b.hidden = !on;
  }

  /* ---------------------------------------------------------------- sortable, filterable table
   * spec: {columns: [col...], rows: [...], totals: {...}|null, rowAttrs: fn(row)->{}, flagRoi: bool,
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
        ft.appendChild(self.cell(col, i === 0 ? null : v, text));
      });
      tfoot.appendChild(ft);
      this.el.appendChild(tfoot);
    }
    this.renderBody();
  };
  Table.prototype.cell = function (col, v, text) {
    var kind = kindOf(col);
    var cls = kind === "text" ? "" : "num";
    var attrs = { "data-col": col };
    if (v !== undefined && v !== null) attrs["data-value"] = String(v);
    if (kind === "roi" && this.spec.flagRoi && v !== null && v !== undefined) {
      var n = Number(v);
      cls += n < 1 ? " roi-low" : " roi-ok";
      if (n < 1) attrs.title = t("sub_below");
    }
    if ((col === "refunds") && Number(v) > 0) cls += " neg";
    if ((col === "net" || col === "commission") && Number(v) < 0) cls += " neg";
    attrs["class"] = cls.trim() || null;
    var td = el("td", attrs);
    if (kind === "roi" && this.spec.flagRoi && v !== null && v !== undefined) {
      td.appendChild(el("span", { "class": "roi-pill", text: text }));
    } else if (kind === "pct") {
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
      spec.columns.forEach(function (col) { tr.appendChild(self.cell(col, r[col], fmtCell(col, r[col]))); });
      frag.appendChild(tr);
    });
    this.tbody.appendChild(frag);
    if (spec.countEl) {
      spec.countEl.textContent = rows.length === spec.rows.length
        ? t("rows_n", { n: rows.length }) : t("rows_nm", { n: rows.length, m: spec.rows.length });
    }
  };

  /* ---------------------------------------------------------------- page chrome */
  function roleLabel(role) { return t("role_" + role); }

  /* For /buyer and /creator: check the token, fill the header, return the /me answer. */
  function guard(allowed) {
    applyI18n();
    wireChrome();
    if (!getToken()) {
      window.location.replace("/");
      return new Promise(function () { /* never resolves: leaving */ });
    }
    return api("/api/v1/me").then(function (me) {
      if (allowed.indexOf(me.role) < 0) {
        window.location.replace(me.role === "creator" ? "/creator" : "/buyer");
        return new Promise(function () { /* leaving */ });
      }
      document.body.setAttribute("data-role", me.role);
      var who = document.getElementById("who");
      if (who) {
        who.innerHTML = "";
        who.appendChild(el("span", { "class": "who-role", "data-i18n": "role_" + me.role, text: roleLabel(me.role) }));
        if (me.subject) who.appendChild(el("span", { "class": "who-subject", text: me.subject }));
        if (me.name) who.appendChild(el("span", { "class": "who-name", text: me.name }));
        who.hidden = false;
      }
      document.querySelectorAll("[data-roles]").forEach(function (n) {
        n.hidden = n.getAttribute("data-roles").split(/\s+/).indexOf(me.role) < 0;
      });
      return me;
    });
  }

  function wireChrome() {
    var toggle = document.getElementById("lang-toggle");
    if (toggle && !toggle._wired) {
      toggle._wired = true;
      toggle.addEventListener("click", function () { setLang(lang() === "en" ? "zh" : "en"); });
    }
    var out = document.getElementById("sign-out");
    if (out && !out._wired) {
      out._wired = true;
      out.addEventListener("click", signOut);
    }
  }

  window.RR = {
    t: t, lang: lang, setLang: setLang, onLang: onLang, applyI18n: applyI18n, colLabel: colLabel,
    valueLabel: valueLabel, getToken: getToken, setToken: setToken, clearToken: clearToken, signOut: signOut,
    api: api, download: download, query: query, ApiError: ApiError,
    fmtMoney: fmtMoney, fmtCount: fmtCount, fmtRoi: fmtRoi, fmtPct: fmtPct, fmtCompact: fmtCompact, fmtCell: fmtCell,
    num: num, kindOf: kindOf, el: el, showError: showError, setBusy: setBusy, Table: Table, guard: guard,
    wireChrome: wireChrome, roleLabel: roleLabel
  };
})();

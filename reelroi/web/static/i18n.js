/* reelroi pages: words in two languages (zh, en), the language switch and the column kinds.
 * Loaded first; the other shared files (app.js, table.js, charts.js) read RR from here. */
(function () {
  "use strict";

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
    gb_date_campaign: ["日期 × 广告计划", "Date × campaign"],
    gb_drama_platform: ["剧目 × 平台", "Drama × platform"],
    gb_date_platform: ["日期 × 平台", "Date × platform"],
    gb_drama_campaign: ["剧目 × 广告计划", "Drama × campaign"],
    low_roi_legend: ["红色 = ROI 低于 1（未回本）", "Red = ROI below 1 (not paid back)"],
    unfinished_legend: ["斜体 * = 该同期群这一天尚未结束，数字还会变", "Italic * = that cohort day has not ended yet: the figure is not final"],
    unfinished: ["未完成", "Not final"],
    unfinished_tip: ["截至数据时间，该同期群的这一天尚未结束，数字还会增长", "This cohort day has not ended at as_of: the figure is not final"],
    curve_points: ["{n} 个已满期同期群", "{n} mature cohorts"],
    curve_young: ["{days}：尚无满期的同期群，暂不画点", "{days}: no cohort is old enough yet, so no point"],
    curve_none: ["尚无满期同期群", "No mature cohort yet"],
    curve_mature_only: ["每个点只计已满该天数的同期群；横轴按天数比例", "Each point counts only cohorts old enough for it; the x-axis is in days"],
    total_label: ["累计", "Total"],
    report_missing: ["服务器暂不提供此报表", "The server does not offer this report yet"],
    compare_missing: ["无法对比上期", "No period comparison"],
    download_bom: ["CSV（Excel）", "CSV (Excel)"],
    download_xlsx: ["Excel xlsx", "Excel xlsx"],
    meta_currency: ["币种", "Currency"],
    meta_tz: ["时区", "Time zone"],
    meta_click: ["点击归因窗口", "Click window"],
    meta_view: ["展示归因窗口", "View window"],
    meta_as_of: ["数据截至", "As of"],
    meta_missing: ["服务器未返回报表口径", "The server sent no report policy"],
    meta_no_data: ["暂无事件", "no events yet"],
    amounts_in: ["金额单位：{c}", "Amounts in {c}"],
    matrix_title: ["同期群矩阵", "Cohort matrix"],
    matrix_sub: ["每行一个同期群：D0…D30 的累计收入 ÷ 消耗；颜色越深 ROI 越高，虚框 = 尚未到期",
      "One row per cohort: cumulative revenue ÷ spend at D0…D30; darker = higher ROI, dashed = not reached yet"],
    matrix_show: ["显示", "Show"],
    matrix_roi: ["ROI", "ROI"],
    matrix_revenue: ["收入", "Revenue"],
    matrix_group: ["矩阵维度", "Matrix by"],
    pivot_title: ["交叉透视", "Pivot"],
    pivot_sub: ["两个维度交叉：行 × 列，单元格为所选指标", "Two dimensions crossed: rows × columns, cells show the chosen metric"],
    pivot_dims: ["行 × 列", "Rows × columns"],
    pivot_metric: ["指标", "Metric"],
    compare_period: ["对比", "Compare"],
    cmp_week: ["近7天 vs 前7天", "Last 7 days vs the 7 before"],
    cmp_month: ["近一月 vs 前一月", "Last month vs the one before"],
    cmp_day: ["近1天 vs 前1天", "Last day vs the day before"],
    cmp_none: ["不对比", "No comparison"],
    cmp_cur_week: ["近7天", "Last 7 days"],
    cmp_prev_week: ["前7天", "7 days before"],
    cmp_cur_month: ["近一月", "Last month"],
    cmp_prev_month: ["前一月", "Month before"],
    cmp_cur_day: ["近1天", "Last day"],
    cmp_prev_day: ["前1天", "Day before"],
    cmp_range: ["{a} 对比 {b}", "{a} vs {b}"],
    gb_funnel: ["漏斗与单位成本", "Funnel and unit costs"],
    cols_basic: ["ROI 列", "ROI columns"],
    cols_funnel: ["漏斗列", "Funnel columns"],

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
    share: ["佣金占比", "Share"],
    impressions: ["展示", "Impressions"],
    clicks: ["点击", "Clicks"],
    ctr: ["点击率", "CTR"],
    click_to_user: ["点击转化率", "Click → user"],
    cost_per_user: ["获客成本", "Cost per user"],
    payer_rate: ["付费率", "Payer rate"],
    cost_per_payer: ["付费成本", "Cost per payer"],
    arpu: ["ARPU", "ARPU"],
    arppu: ["ARPPU", "ARPPU"],
    revenue: ["收入", "Revenue"],
    roi: ["ROI", "ROI"]
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
    "revenue_d7", "revenue_total", "commission", "gross", "net", "cost_per_user", "cost_per_payer", "arpu", "arppu",
    "revenue"];
  var COUNTS = ["new_users", "payers", "impressions", "clicks"];
  var ROIS = ["roi_d0", "roi_d7", "roi_total", "roi"];
  var PCTS = ["share", "ctr", "click_to_user", "payer_rate"];

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

  function kindOf(col) {
    if (MONEY.indexOf(col) >= 0) return "money";
    if (COUNTS.indexOf(col) >= 0) return "count";
    if (ROIS.indexOf(col) >= 0) return "roi";
    if (PCTS.indexOf(col) >= 0) return "pct";
    return "text";
  }

  /* A page's own words, column labels ({key: [zh, en]}) and column kinds ({money: [col...],
   * count: [...], roi: [...], pct: [...]}), merged into the shared ones; loaded after this file. */
  function addWords(words, columns, kinds) {
    Object.assign(DICT, words || {});
    Object.assign(COLS, columns || {});
    var lists = { money: MONEY, count: COUNTS, roi: ROIS, pct: PCTS };
    Object.keys(kinds || {}).forEach(function (k) {
      (kinds[k] || []).forEach(function (col) { if (lists[k] && lists[k].indexOf(col) < 0) lists[k].push(col); });
    });
  }

  window.RR = Object.assign(window.RR || {}, {
    t: t, lang: lang, other: other, setLang: setLang, onLang: onLang, applyI18n: applyI18n,
    colLabel: colLabel, valueLabel: valueLabel, kindOf: kindOf, addWords: addWords
  });
})();

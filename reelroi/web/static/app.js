/* reelroi pages: shared helpers (token, API calls, downloads, formatting, DOM, page chrome).
 * Loaded after i18n.js. Everything is local: no CDN, no external fonts; the only third-party
 * code is the vendored ECharts (static/vendor/echarts/).
 * The token lives in localStorage and is only ever sent in the Authorization header. */
(function () {
  "use strict";

  var TOKEN_KEY = "reelroi.token";
  var RR = window.RR;
  var t = RR.t, lang = RR.lang, valueLabel = RR.valueLabel, kindOf = RR.kindOf, applyI18n = RR.applyI18n, setLang = RR.setLang;

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

  var ACCEPT = { csv: "text/csv", xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" };

  /* Fetch an export (params.format "csv" or "xlsx") with the Authorization header and save it as a
   * file, so no token lands in a URL; resolves to the file name. */
  function download(path, params, fallbackName) {
    var accept = ACCEPT[(params && params.format) || "csv"] || "*/*";
    return request(path, params, { accept: accept }).then(function (res) {
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
  function fmtCell(col, v) {
    switch (kindOf(col)) {
      case "money": return fmtMoney(v);
      case "count": return fmtCount(v);
      case "roi": return fmtRoi(v);
      case "pct": return fmtPct(num(v), 2);
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

  /* ---------------------------------------------------------------- report policy (meta)
   * Every report answer carries meta {currency, tz, click_window, view_window, as_of, warning} (SPEC 5):
   * renderMeta(target, meta) writes it as one line of labelled items (and the warning as an alert) into
   * target (an element or its id); without meta it says the server sent none. Returns the element. */
  var META_ITEMS = [["currency", "meta_currency"], ["tz", "meta_tz"], ["click_window", "meta_click"],
    ["view_window", "meta_view"], ["as_of", "meta_as_of"]];

  function fmtAsOf(v) {
    if (!v) return t("meta_no_data");
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(.*)$/.exec(String(v));
    return m ? m[1] + " " + m[2] + (m[3] ? " " + m[3].replace(/^Z$/, "UTC") : "") : String(v);
  }

  function renderMeta(target, meta) {
    var box = typeof target === "string" ? document.getElementById(target) : target;
    if (!box) return null;
    box.innerHTML = "";
    box.classList.add("report-meta");
    box.hidden = false;
    if (!meta) {
      box.setAttribute("data-meta", "missing");
      box.appendChild(el("span", { "class": "meta-missing", text: t("meta_missing") }));
      return box;
    }
    box.setAttribute("data-meta", "shown");
    META_ITEMS.forEach(function (item) {
      var v = meta[item[0]];
      box.setAttribute("data-" + item[0].replace("_", "-"), v == null ? "" : String(v));
      box.appendChild(el("span", { "class": "meta-item", "data-key": item[0] }, [
        el("span", { "class": "meta-k", text: t(item[1]) }),
        el("b", { "class": "meta-v", text: item[0] === "as_of" ? fmtAsOf(v) : (v == null || v === "" ? "—" : String(v)) })
      ]));
    });
    if (meta.warning) {
      box.appendChild(el("div", { "class": "meta-warning", role: "alert", "data-key": "warning", text: "⚠ " + meta.warning }));
    }
    return box;
  }

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

  Object.assign(RR, {
    getToken: getToken, setToken: setToken, clearToken: clearToken, signOut: signOut,
    api: api, download: download, query: query, ApiError: ApiError,
    fmtMoney: fmtMoney, fmtCount: fmtCount, fmtRoi: fmtRoi, fmtPct: fmtPct, fmtCompact: fmtCompact, fmtCell: fmtCell,
    num: num, el: el, showError: showError, setBusy: setBusy, guard: guard,
    wireChrome: wireChrome, roleLabel: roleLabel, renderMeta: renderMeta, fmtAsOf: fmtAsOf
  });
})();

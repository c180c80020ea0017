/* reelroi charts: a few small SVG charts (bars + line, line, donut), no libraries.
 * Each chart draws into a container element, sizes itself to the container's width,
 * redraws when the container is resized, and shows an HTML tooltip on hover. */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";

  function svgEl(tag, attrs, parent) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) n.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(n);
    return n;
  }
  function htmlEl(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  /* "Nice" axis ticks covering [lo, hi]. */
  function ticks(lo, hi, count) {
    if (lo === hi) { hi = lo + 1; }
    var span = hi - lo;
    var raw = span / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var norm = raw / mag;
    var step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
    var start = Math.floor(lo / step) * step;
    var end = Math.ceil(hi / step) * step;
    var out = [];
    for (var v = start; v <= end + step / 2; v += step) out.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return out;
  }

  /* ------------------------------------------------------------ resizing + tooltip */
  var observer = null;
  function watch(container, draw) {
    container._draw = draw;
    container._width = container.clientWidth;
    if (!observer && window.ResizeObserver) {
      observer = new ResizeObserver(function (entries) {
        entries.forEach(function (e) {
          var c = e.target;
          var w = c.clientWidth;
          if (c._draw && Math.abs(w - (c._width || 0)) > 2) { c._width = w; c._draw(); }
        });
      });
    }
    if (observer && !container._observed) { observer.observe(container); container._observed = true; }
  }

  function tooltip(container) {
    var tip = htmlEl("div", "chart-tip");
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    container.appendChild(tip);
    return {
      show: function (title, lines, x, y) {
        tip.innerHTML = "";
        tip.appendChild(htmlEl("div", "tip-title", title));
        lines.forEach(function (l) {
          var row = htmlEl("div", "tip-row");
          var sw = htmlEl("i", "sw");
          sw.style.background = l.color;
          row.appendChild(sw);
          row.appendChild(htmlEl("span", "tip-name", l.name));
          row.appendChild(htmlEl("b", null, l.value));
          tip.appendChild(row);
        });
        tip.hidden = false;
        var cw = container.clientWidth;
        var tw = tip.offsetWidth;
        var left = x + 14;
        if (left + tw > cw - 4) left = Math.max(4, x - tw - 14);
        tip.style.left = left + "px";
        tip.style.top = Math.max(0, y - 10) + "px";
      },
      hide: function () { tip.hidden = true; }
    };
  }

  function legend(items) {
    var box = htmlEl("div", "legend");
    items.forEach(function (it) {
      var item = htmlEl("span", "legend-item" + (it.kind === "line" ? " is-line" : it.kind === "dash" ? " is-dash" : ""));
      var sw = htmlEl("i", "sw");
      sw.style.background = it.color;
      if (it.kind === "dash") sw.style.borderColor = it.color;
      item.appendChild(sw);
      item.appendChild(htmlEl("span", null, it.name));
      box.appendChild(item);
    });
    return box;
  }

  function empty(container, message) {
    container.innerHTML = "";
    container.classList.add("is-empty");
    container.appendChild(htmlEl("div", "chart-empty", message || "—"));
  }

  function frame(container) {
    container.innerHTML = "";
    container.classList.remove("is-empty");
    container.classList.add("chart");
  }

  function relPos(container, evt) {
    var r = container.getBoundingClientRect();
    return { x: evt.clientX - r.left, y: evt.clientY - r.top };
  }

  /* ------------------------------------------------------------ bars (+ optional line on a right axis)
   * opts: labels[], bars: [{name, color, values[]}], line: {name, color, values[]} | null,
   *       yFormat(n), y2Format(n), tipFormat(n), lineTipFormat(n), labelFormat(label), ref2 (number), ref2Label,
   *       height, emptyText */
  function combo(container, opts) {
    function draw() {
      var labels = opts.labels || [];
      if (!labels.length) { empty(container, opts.emptyText); return; }
      frame(container);
      var items = opts.bars.map(function (b) { return { name: b.name, color: b.color }; });
      if (opts.line) items.push({ name: opts.line.name, color: opts.line.color, kind: "line" });
      if (opts.line && opts.ref2 != null) items.push({ name: opts.ref2Label, color: "#94a3b8", kind: "dash" });
      container.appendChild(legend(items));

      var W = Math.max(280, container.clientWidth || 600);
      var H = opts.height || 260;
      var narrow = W < 480;
      var m = { t: 12, r: opts.line ? (narrow ? 38 : 46) : 12, b: 26, l: narrow ? 42 : 52 };
      var pw = W - m.l - m.r, ph = H - m.t - m.b;
      var svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "chart-svg", role: "img" });
      if (opts.title) svgEl("title", {}, svg).textContent = opts.title;

      var lo = 0, hi = 0;
      opts.bars.forEach(function (b) { b.values.forEach(function (v) { if (v != null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
      var yt = ticks(lo, hi || 1, narrow ? 4 : 5);
      var y0 = yt[0], y1 = yt[yt.length - 1];
      var y = function (v) { return m.t + ph - ((v - y0) / (y1 - y0)) * ph; };

      var g = svgEl("g", { "class": "grid" }, svg);
      yt.forEach(function (v) {
        svgEl("line", { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v), "class": v === 0 ? "zero" : "" }, g);
        var tx = svgEl("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", "class": "axis" }, svg);
        tx.textContent = (opts.yFormat || String)(v);
      });

      var y2 = null, y2t = null;
      if (opts.line) {
        var vals = opts.line.values.filter(function (v) { return v != null; });
        var l2 = 0, h2 = Math.max.apply(null, vals.concat([opts.ref2 != null ? opts.ref2 * 1.1 : 0, 0.0001]));
        y2t = ticks(Math.min(l2, Math.min.apply(null, vals.concat([0]))), h2, yt.length - 1);
        var a = y2t[0], b = y2t[y2t.length - 1];
        y2 = function (v) { return m.t + ph - ((v - a) / (b - a)) * ph; };
        y2t.forEach(function (v) {
          var tx = svgEl("text", { x: m.l + pw + 6, y: y2(v) + 4, "text-anchor": "start", "class": "axis axis-r" }, svg);
          tx.textContent = (opts.y2Format || String)(v);
        });
      }

      var n = labels.length;
      var band = pw / n;
      /* a series that is zero everywhere keeps its legend entry but takes no room */
      var drawn = opts.bars.filter(function (s) { return s.values.some(function (v) { return v; }); });
      if (!drawn.length) drawn = opts.bars.slice(0, 1);
      var nb = drawn.length;
      var inner = Math.min(band * 0.72, nb * 34);
      var bw = inner / nb;
      var bars = svgEl("g", { "class": "bars" }, svg);
      drawn.forEach(function (s, si) {
        s.values.forEach(function (v, i) {
          if (v == null) return;
          var x = m.l + band * i + (band - inner) / 2 + bw * si;
          var top = y(Math.max(0, v)), bot = y(Math.min(0, v));
          svgEl("rect", {
            x: (x + 1).toFixed(1), y: top.toFixed(1), width: Math.max(1, bw - 2).toFixed(1),
            height: Math.max(v === 0 ? 0 : 1, bot - top).toFixed(1), rx: Math.min(3, bw / 4).toFixed(1),
            fill: s.color, "class": "bar", "data-series": s.key || s.name, "data-index": i, "data-value": v
          }, bars);
        });
      });

      if (opts.line && y2) {
        if (opts.ref2 != null) {
          svgEl("line", { x1: m.l, x2: m.l + pw, y1: y2(opts.ref2), y2: y2(opts.ref2), "class": "ref-line" }, svg);
        }
        var d = "", pts = [];
        opts.line.values.forEach(function (v, i) {
          if (v == null) return;
          var px = m.l + band * i + band / 2, py = y2(v);
          d += (d ? "L" : "M") + px.toFixed(1) + "," + py.toFixed(1);
          pts.push([px, py, v]);
        });
        if (d) svgEl("path", { d: d, fill: "none", stroke: opts.line.color, "stroke-width": 2.5, "class": "line", "stroke-linejoin": "round" }, svg);
        pts.forEach(function (p) {
          svgEl("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 3.5, fill: "#fff", stroke: opts.line.color, "stroke-width": 2, "class": "dot", "data-value": p[2] }, svg);
        });
      }

      var every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(pw / (narrow ? 44 : 56)))));
      labels.forEach(function (lab, i) {
        if (i % every !== 0 && i !== n - 1) return;
        if (i === n - 1 && i % every !== 0 && (n - 1) % every < every / 2) return;
        var tx = svgEl("text", { x: m.l + band * i + band / 2, y: H - 8, "text-anchor": "middle", "class": "axis" }, svg);
        tx.textContent = (opts.labelFormat || String)(lab);
      });

      var tip = null;
      var hits = svgEl("g", { "class": "hits" }, svg);
      labels.forEach(function (lab, i) {
        var r = svgEl("rect", { x: m.l + band * i, y: m.t, width: band, height: ph, fill: "transparent", "class": "hit" }, hits);
        r.addEventListener("mousemove", function (evt) {
          var lines = opts.bars.map(function (s) {
            return { name: s.name, color: s.color, value: (opts.tipFormat || String)(s.values[i]) };
          });
          if (opts.line) {
            var lv = opts.line.values[i];
            lines.push({ name: opts.line.name, color: opts.line.color, value: lv == null ? "—" : (opts.lineTipFormat || String)(lv) });
          }
          var p = relPos(container, evt);
          tip.show(lab, lines, p.x, p.y);
          r.setAttribute("fill", "rgba(99,102,241,0.06)");
        });
        r.addEventListener("mouseleave", function () { tip.hide(); r.setAttribute("fill", "transparent"); });
      });
      container.appendChild(svg);
      tip = tooltip(container);
    }
    watch(container, draw);
    draw();
  }

  /* ------------------------------------------------------------ line chart with labelled points
   * opts: labels[], series: {name, color, values[]}, yFormat, pointFormat, ref (number), refLabel, height,
   *       extra(i) -> [{name, value, color}] for the tooltip, emptyText */
  function line(container, opts) {
    function draw() {
      var labels = opts.labels || [];
      var s = opts.series;
      var present = s.values.filter(function (v) { return v != null; });
      if (!labels.length || !present.length) { empty(container, opts.emptyText); return; }
      frame(container);
      var items = [{ name: s.name, color: s.color, kind: "line" }];
      if (opts.ref != null) items.push({ name: opts.refLabel, color: "#94a3b8", kind: "dash" });
      container.appendChild(legend(items));

      var W = Math.max(260, container.clientWidth || 400);
      var H = opts.height || 260;
      var m = { t: 22, r: 18, b: 26, l: 44 };
      var pw = W - m.l - m.r, ph = H - m.t - m.b;
      var svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "chart-svg", role: "img" });
      var hi = Math.max.apply(null, present.concat([opts.ref != null ? opts.ref * 1.15 : 0]));
      var lo = Math.min(0, Math.min.apply(null, present));
      var yt = ticks(lo, hi * 1.08 || 1, 4);
      var a = yt[0], b = yt[yt.length - 1];
      var y = function (v) { return m.t + ph - ((v - a) / (b - a)) * ph; };
      var n = labels.length;
      var x = function (i) { return n === 1 ? m.l + pw / 2 : m.l + 22 + (pw - 44) * i / (n - 1); };

      var g = svgEl("g", { "class": "grid" }, svg);
      yt.forEach(function (v) {
        svgEl("line", { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v), "class": v === 0 ? "zero" : "" }, g);
        var tx = svgEl("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", "class": "axis" }, svg);
        tx.textContent = (opts.yFormat || String)(v);
      });
      if (opts.ref != null) {
        svgEl("line", { x1: m.l, x2: m.l + pw, y1: y(opts.ref), y2: y(opts.ref), "class": "ref-line" }, svg);
      }

      var d = "", area = "", first = null, last = null;
      s.values.forEach(function (v, i) {
        if (v == null) return;
        var px = x(i).toFixed(1), py = y(v).toFixed(1);
        d += (d ? "L" : "M") + px + "," + py;
        if (first === null) first = px;
        last = px;
      });
      area = d + "L" + last + "," + y(Math.max(a, 0)).toFixed(1) + "L" + first + "," + y(Math.max(a, 0)).toFixed(1) + "Z";
      svgEl("path", { d: area, fill: s.color, "fill-opacity": 0.1, stroke: "none", "class": "area" }, svg);
      svgEl("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 2.5, "stroke-linejoin": "round", "class": "line" }, svg);

      var tip = null;
      s.values.forEach(function (v, i) {
        if (v == null) return;
        var below = opts.ref != null && v < opts.ref;
        svgEl("circle", { cx: x(i), cy: y(v), r: 4.5, fill: "#fff", stroke: below ? "#dc2626" : s.color, "stroke-width": 2.5, "class": "dot", "data-value": v }, svg);
        var tx = svgEl("text", { x: x(i), y: y(v) - 10, "text-anchor": "middle", "class": "point-label" + (below ? " below" : "") }, svg);
        tx.textContent = (opts.pointFormat || String)(v);
      });
      labels.forEach(function (lab, i) {
        var tx = svgEl("text", { x: x(i), y: H - 8, "text-anchor": "middle", "class": "axis" }, svg);
        tx.textContent = lab;
      });
      var hits = svgEl("g", { "class": "hits" }, svg);
      labels.forEach(function (lab, i) {
        var left = i === 0 ? m.l : (x(i - 1) + x(i)) / 2;
        var right = i === n - 1 ? m.l + pw : (x(i) + x(i + 1)) / 2;
        var r = svgEl("rect", { x: left, y: m.t, width: Math.max(1, right - left), height: ph, fill: "transparent", "class": "hit" }, hits);
        r.addEventListener("mousemove", function (evt) {
          var lines = [{ name: s.name, color: s.color, value: s.values[i] == null ? "—" : (opts.pointFormat || String)(s.values[i]) }];
          if (opts.extra) lines = lines.concat(opts.extra(i));
          var p = relPos(container, evt);
          tip.show(lab, lines, p.x, p.y);
        });
        r.addEventListener("mouseleave", function () { tip.hide(); });
      });
      container.appendChild(svg);
      tip = tooltip(container);
    }
    watch(container, draw);
    draw();
  }

  /* ------------------------------------------------------------ donut
   * opts: parts: [{name, value, color, text}], centerTop, centerBottom, emptyText */
  function donut(container, opts) {
    function draw() {
      var parts = (opts.parts || []).filter(function (p) { return p.value > 0; });
      var total = parts.reduce(function (s, p) { return s + p.value; }, 0);
      if (!total) { empty(container, opts.emptyText); return; }
      frame(container);
      container.classList.add("donut-wrap");
      var size = Math.min(200, Math.max(150, (container.clientWidth || 300) * 0.5));
      var R = size / 2, r = R * 0.64, cx = R, cy = R;
      var svg = svgEl("svg", { width: size, height: size, viewBox: "0 0 " + size + " " + size, "class": "chart-svg donut", role: "img" });
      var angle = -Math.PI / 2;
      var tip = null;
      parts.forEach(function (p) {
        var frac = p.value / total;
        var seg;
        if (frac >= 0.9999) {
          seg = svgEl("path", {
            d: "M" + cx + "," + (cy - R) + "A" + R + "," + R + " 0 1,1 " + (cx - 0.01) + "," + (cy - R) + "Z" +
               "M" + cx + "," + (cy - r) + "A" + r + "," + r + " 0 1,0 " + (cx + 0.01) + "," + (cy - r) + "Z",
            fill: p.color, "fill-rule": "evenodd", "class": "slice"
          }, svg);
        } else {
          var a0 = angle, a1 = angle + frac * Math.PI * 2;
          var large = a1 - a0 > Math.PI ? 1 : 0;
          var pt = function (rad, ang) { return (cx + rad * Math.cos(ang)).toFixed(2) + "," + (cy + rad * Math.sin(ang)).toFixed(2); };
          seg = svgEl("path", {
            d: "M" + pt(R, a0) + "A" + R + "," + R + " 0 " + large + ",1 " + pt(R, a1) +
               "L" + pt(r, a1) + "A" + r + "," + r + " 0 " + large + ",0 " + pt(r, a0) + "Z",
            fill: p.color, "class": "slice", stroke: "#fff", "stroke-width": 2
          }, svg);
        }
        seg.setAttribute("data-name", p.name);
        seg.setAttribute("data-value", p.value);
        seg.addEventListener("mousemove", function (evt) {
          var pos = relPos(container, evt);
          tip.show(p.name, [{ name: (frac * 100).toFixed(1) + "%", color: p.color, value: p.text || String(p.value) }], pos.x, pos.y);
        });
        seg.addEventListener("mouseleave", function () { tip.hide(); });
        angle += frac * Math.PI * 2;
      });
      var t1 = svgEl("text", { x: cx, y: cy - 2, "text-anchor": "middle", "class": "donut-big" }, svg);
      t1.textContent = opts.centerTop || "";
      var t2 = svgEl("text", { x: cx, y: cy + 16, "text-anchor": "middle", "class": "donut-small" }, svg);
      t2.textContent = opts.centerBottom || "";
      container.appendChild(svg);

      var list = htmlEl("ul", "donut-legend");
      (opts.parts || []).forEach(function (p) {
        var li = htmlEl("li");
        var sw = htmlEl("i", "sw");
        sw.style.background = p.color;
        li.appendChild(sw);
        var txt = htmlEl("div", "dl-text");
        txt.appendChild(htmlEl("span", "dl-name", p.name));
        txt.appendChild(htmlEl("b", "dl-value", p.text || String(p.value)));
        txt.appendChild(htmlEl("span", "dl-pct", total ? (Math.max(0, p.value) / total * 100).toFixed(1) + "%" : "—"));
        li.appendChild(txt);
        list.appendChild(li);
      });
      if (opts.note) list.appendChild(htmlEl("li", "dl-note", opts.note));
      container.appendChild(list);
      tip = tooltip(container);
    }
    watch(container, draw);
    draw();
  }

  window.Charts = { combo: combo, line: line, donut: donut, ticks: ticks };
})();

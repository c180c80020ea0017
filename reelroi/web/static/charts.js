/* reelroi pages: charts, drawn by the vendored Apache ECharts (static/vendor/echarts/, canvas renderer).
 *
 * The pages give a chart a plain spec (labels, series values, formatters) and these helpers turn it
 * into an ECharts option. Nothing here needs eval or inline markup styles, so the strict
 * Content-Security-Policy of `reelroi serve` holds: tooltips are DOM nodes built with RR.el, whose
 * colours go through the CSSOM. Tests read what a chart shows with
 * echarts.getInstanceByDom(el).getOption(); series carry stable ids for that. */
(function () {
  "use strict";
  var RR = window.RR;
  var el = RR.el;
  var charts = [];
  var AXIS = "#94a3b8", GRID = "#eef2f7", INK = "#334155", REF = "#94a3b8";
  var FONT = getComputedStyle(document.body).fontFamily;

  /* The chart instance of a container, created once; `height` (px) is set on the container first. */
  function mount(node, height) {
    if (height) node.style.height = height + "px";
    var chart = echarts.getInstanceByDom(node);
    if (!chart) {
      chart = echarts.init(node, null, { renderer: "canvas" });
      charts.push(chart);
    }
    return chart;
  }

  function draw(node, height, option) {
    var chart = mount(node, height);
    option.textStyle = { fontFamily: FONT };
    option.animationDuration = 300;
    chart.setOption(option, { notMerge: true });
    node.setAttribute("data-chart", option.series && option.series.length ? "drawn" : "empty");
    return chart;
  }

  function emptyOption(text) {
    return { title: { text: text, left: "center", top: "middle", textStyle: { color: AXIS, fontSize: 13, fontWeight: "normal" } }, series: [] };
  }

  /* The chart is replaced by a message (no data, no spend). */
  function empty(node, text, height) { return draw(node, height || 240, emptyOption(text)); }

  /* One tooltip as DOM: a title and rows of [colour, name, value]. */
  function tip(title, rows) {
    return el("div", { "class": "chart-tip" }, [el("div", { "class": "tip-title", text: title })].concat(rows.map(function (r) {
      return el("div", { "class": "tip-row" }, [
        el("span", { "class": "sw", style: "background:" + r[0] }), el("span", { text: r[1] }), el("b", { text: r[2] })
      ]);
    })));
  }
  function tooltip(trigger, formatter) {
    return { trigger: trigger, formatter: formatter, padding: 0, borderWidth: 0, backgroundColor: "transparent",
      extraCssText: "box-shadow:none", confine: true };
  }
  function refLine(y, label, where) {
    return { silent: true, symbol: "none", lineStyle: { color: REF, type: "dashed", width: 1.2 },
      label: { formatter: label, position: where || "insideEndTop", color: AXIS, fontSize: 11 }, data: [{ yAxis: y }] };
  }
  function valueAxis(format, extra) {
    return Object.assign({ type: "value", axisLabel: { color: AXIS, fontSize: 11, formatter: format },
      splitLine: { lineStyle: { color: GRID } } }, extra || {});
  }

  /* Bars by category and an optional line on a second axis.
   * spec: {labels, labelFormat, bars: [{key, name, color, values}], line: {name, color, values}|null,
   *        ref2, ref2Label, yFormat, y2Format, tipFormat, lineTipFormat, emptyText, height} */
  function combo(node, spec) {
    var height = spec.height || 260;
    if (!spec.labels.length) return empty(node, spec.emptyText, height);
    var series = spec.bars.map(function (b) {
      return { id: b.key, name: b.name, type: "bar", data: b.values, itemStyle: { color: b.color, borderRadius: [3, 3, 0, 0] },
        barMaxWidth: 26, barGap: "15%" };
    });
    var yAxis = [valueAxis(spec.yFormat)];
    if (spec.line) {
      yAxis.push(valueAxis(spec.y2Format, { splitLine: { show: false } }));
      series.push({ id: "line", name: spec.line.name, type: "line", yAxisIndex: 1, data: spec.line.values,
        itemStyle: { color: spec.line.color }, lineStyle: { width: 2.5 }, symbolSize: 7, connectNulls: false,
        markLine: spec.ref2 != null ? refLine(spec.ref2, spec.ref2Label) : undefined });
    }
    var fmt = spec.tipFormat || String, lineFmt = spec.lineTipFormat || String;
    return draw(node, height, {
      grid: { left: 8, right: 8, top: 34, bottom: 4, containLabel: true },
      legend: { top: 0, left: 0, itemWidth: 12, itemHeight: 8, textStyle: { color: INK, fontSize: 12 } },
      tooltip: tooltip("axis", function (items) {
        return tip(spec.labels[items[0].dataIndex], items.map(function (it) {
          var isLine = it.seriesId === "line";
          return [it.color, it.seriesName, it.value == null ? "—" : (isLine ? lineFmt : fmt)(it.value)];
        }));
      }),
      xAxis: { type: "category", data: spec.labels, axisTick: { show: false }, axisLine: { lineStyle: { color: "#cbd5e1" } },
        axisLabel: { color: AXIS, fontSize: 11, formatter: spec.labelFormat } },
      yAxis: yAxis,
      series: series
    });
  }

  /* The cohort curve on a proportional day axis: D0, D1, D3, D7 at x = 0, 1, 3, 7; the total (no
   * offset) as a separate point after a gap. A point without ROI (no mature cohort) is left out.
   * spec: {points: [{day, offset, roi, revenue, cohorts}], dayLabel: fn(point), ref, refLabel,
   *        yFormat, pointFormat, extra: fn(point) -> [[colour, name, value]], color, emptyText, height} */
  function curve(node, spec) {
    var height = spec.height || 260;
    var days = spec.points.filter(function (p) { return p.offset != null && p.roi != null; });
    var total = spec.points.filter(function (p) { return p.offset == null && p.roi != null; })[0] || null;
    if (!days.length && !total) return empty(node, spec.emptyText, height);
    var last = Math.max.apply(null, spec.points.map(function (p) { return p.offset == null ? 0 : p.offset; }));
    var totalX = last + Math.max(2, Math.ceil(last * 0.25));
    var byX = {}, ticks = [];
    spec.points.forEach(function (p) { var x = p.offset == null ? totalX : p.offset; byX[x] = p; ticks.push(x); });
    var roiOf = function (p) { return RR.num(p.roi); };
    var series = [{ id: "curve", name: "ROI", type: "line", data: days.map(function (p) { return [p.offset, roiOf(p)]; }),
      itemStyle: { color: spec.color }, lineStyle: { width: 2.5 }, symbolSize: 8, areaStyle: { opacity: 0.08 },
      label: { show: true, position: "top", color: INK, fontSize: 11, formatter: function (it) { return spec.pointFormat(it.value[1]); } },
      markLine: spec.ref != null ? refLine(spec.ref, spec.refLabel, "insideMiddleTop") : undefined }];
    if (total) {
      series.push({ id: "total", name: spec.dayLabel(total), type: "scatter", data: [[totalX, roiOf(total)]], symbol: "diamond",
        symbolSize: 12, itemStyle: { color: spec.totalColor || "#0f172a" },
        label: { show: true, position: "top", color: INK, fontSize: 11, formatter: function (it) { return spec.pointFormat(it.value[1]); } } });
    }
    return draw(node, height, {
      grid: { left: 8, right: 16, top: 24, bottom: 4, containLabel: true },
      tooltip: tooltip("item", function (it) {
        var p = byX[it.value[0]];
        return tip(spec.dayLabel(p), [[it.color, "ROI", spec.pointFormat(it.value[1])]].concat(spec.extra ? spec.extra(p) : []));
      }),
      xAxis: { type: "value", min: -0.4, max: totalX + 0.4, splitLine: { show: false },
        axisLine: { lineStyle: { color: "#cbd5e1" } }, axisTick: { show: true, customValues: ticks },
        axisLabel: { color: AXIS, fontSize: 11, customValues: ticks,
          formatter: function (v) { var p = byX[v]; return p ? spec.dayLabel(p) : ""; } } },
      yAxis: valueAxis(spec.yFormat, { scale: false }),
      series: series
    });
  }

  /* Shares of a whole as a ring with a figure in its middle.
   * spec: {parts: [{name, value, color, text}], centerTop, centerBottom, note, emptyText, height} */
  function donut(node, spec) {
    var height = spec.height || 260;
    var sum = spec.parts.reduce(function (a, p) { return a + (p.value || 0); }, 0);
    if (!sum) return empty(node, spec.emptyText, height);
    var graphic = [{ type: "text", left: "center", top: "38%", style: { text: spec.centerTop, fontSize: 20, fontWeight: 700, fill: "#0f172a", textAlign: "center" } },
      { type: "text", left: "center", top: "49%", style: { text: spec.centerBottom, fontSize: 11, fill: "#64748b", textAlign: "center" } }];
    if (spec.note) graphic.push({ type: "text", left: "center", bottom: 0, style: { text: spec.note, fontSize: 12, fill: "#dc2626" } });
    return draw(node, height, {
      legend: { bottom: spec.note ? 22 : 0, left: "center", itemWidth: 10, itemHeight: 10, textStyle: { color: INK, fontSize: 12 } },
      tooltip: tooltip("item", function (it) {
        var p = spec.parts[it.dataIndex];
        return tip(p.name, [[p.color, p.text, (it.percent == null ? 0 : it.percent).toFixed(1) + "%"]]);
      }),
      graphic: graphic,
      series: [{ id: "split", type: "pie", radius: ["52%", "74%"], center: ["50%", "45%"], avoidLabelOverlap: true,
        label: { show: false }, itemStyle: { borderColor: "#fff", borderWidth: 2 },
        data: spec.parts.map(function (p) { return { name: p.name, value: p.value, itemStyle: { color: p.color } }; }) }]
    });
  }

  window.addEventListener("resize", function () { charts.forEach(function (c) { if (!c.isDisposed()) c.resize(); }); });

  window.Charts = { mount: mount, draw: draw, empty: empty, combo: combo, curve: curve, donut: donut, tip: tip };
})();

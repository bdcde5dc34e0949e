// The report page's own style and script (inlined into report.html beside uPlot). The script reads the
// embedded JSON (#report-data) and builds every section; charts are uPlot. `window.report` holds the
// charts and the data, for a test (or a curious reader's console) to look at.

export const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: middle; }
th { font-weight: 600; color: #555; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.timeline { display: flex; height: 26px; border: 1px solid #ccc; }
.timeline div { overflow: hidden; white-space: nowrap; font-size: 11px; padding: 5px 2px; color: #fff; text-shadow: 0 0 2px #000; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.strip { display: flex; gap: 4px; flex-wrap: wrap; } .strip figure { margin: 0; font-size: 11px; text-align: center; }
.picker img { display: block; margin-top: 6px; border: 1px solid #ccc; } .picker input { width: 420px; }
.empty { color: #888; font-style: italic; }
`;

export const PAGE_SCRIPT = `
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var app = document.getElementById("app");
  var COLORS = ["#e6194b","#3cb44b","#4363d8","#f58231","#911eb4","#42d4f4","#f032e6","#bfef45","#469990","#9a6324","#800000","#808000","#000075","#a9a9a9"];
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) { if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); }
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }
  function section(id, title) { var s = el("section", { id: id }); s.appendChild(el("h2", { text: title })); app.appendChild(s); return s; }
  function table(head, rows, id) {
    var t = el("table", id ? { id: id } : {});
    t.appendChild(el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { text: h }); }))]));
    var b = el("tbody");
    rows.forEach(function (r) { b.appendChild(r); });
    t.appendChild(b);
    return t;
  }
  function cells(values, attrs) { return el("tr", attrs || {}, values.map(function (v) { return v instanceof Node ? el("td", {}, [v]) : el("td", { text: v === null || v === undefined ? "-" : String(v), class: typeof v === "number" ? "num" : "" }); })); }
  function fmt(x, d) { return x === null || x === undefined ? "-" : Number(x).toFixed(d); }
  function hashColor(s) { var h = 0; for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0; return "hsl(" + (h % 360) + ",55%,45%)"; }
  function width() { return Math.min(1050, app.clientWidth || 1000); }
  var report = { data: D, charts: {} };
  window.report = report;

  // Facts and models.
  var facts = section("facts", "Video and run");
  var v = D.video, a = D.analysis;
  facts.appendChild(table(["", ""], [
    cells(["video", v.path]),
    cells(["picture", v.width + "x" + v.height + " " + v.codec + ", " + v.fps + " fps, " + fmt(v.duration, 1) + " s" + (v.frames ? ", " + v.frames + " frames" : "")]),
    cells(["analysis", a.width + "x" + a.height + " at " + a.fps + " fps: " + a.frames + " frames, " + fmt(a.first, 2) + " s to " + fmt(a.last, 2) + " s"]),
    cells(["profile", D.profile]),
    cells(["run", D.created_at + " by " + D.sdk.name + " " + D.sdk.version + (D.wall_ms !== null ? ", " + fmt(D.wall_ms / 1000, 1) + " s" : "")]),
  ], "facts-table"));
  var models = section("models", "Models");
  models.appendChild(D.models.length ? table(["slot", "model", "branch", "backend", "calls", "p50 ms", "p95 ms"], D.models.map(function (m) {
    return cells([m.slot, m.name, m.branch, m.backend, m.calls, m.p50_ms === null ? null : +m.p50_ms.toFixed(1), m.p95_ms === null ? null : +m.p95_ms.toFixed(1)]);
  }), "models-table") : el("p", { class: "empty", text: "no models listed" }));

  // Scene timeline: one band per run of frames with the same top label.
  var scene = section("labels", "Scene (top label over time)");
  if (D.scene && D.scene.t.length) {
    var s = D.scene, t0 = s.t[0], t1 = s.t[s.t.length - 1], step = s.t.length > 1 ? (t1 - t0) / (s.t.length - 1) : 1, span = t1 - t0 + step;
    var bar = el("div", { class: "timeline", id: "scene-timeline" }), seen = {};
    for (var i = 0; i < s.t.length; ) {
      var j = i; while (j + 1 < s.t.length && s.label[j + 1] === s.label[i]) j++;
      var end = j + 1 < s.t.length ? s.t[j + 1] : t1 + step;
      var seg = el("div", { "data-label": s.label[i], "data-start": s.t[i], "data-end": end, title: s.label[i] + ": " + fmt(s.t[i], 1) + " s to " + fmt(end, 1) + " s", text: s.label[i] });
      seg.style.flex = String((end - s.t[i]) / span);
      seg.style.background = hashColor(s.label[i]);
      bar.appendChild(seg); seen[s.label[i]] = 1; i = j + 1;
    }
    scene.appendChild(bar);
    scene.appendChild(el("div", { class: "legend" }, Object.keys(seen).map(function (l) { var sw = el("i"); sw.style.background = hashColor(l); return el("span", {}, [sw, document.createTextNode(l)]); })));
    report.sceneAt = function (t) { var k = -1; for (var q = 0; q < s.t.length; q++) if (s.t[q] <= t + 1e-6) k = q; return k < 0 ? null : s.label[k]; };
  } else scene.appendChild(el("p", { class: "empty", text: "no scene artifact in this run" }));

  function lineChart(parent, id, title, xs, series, opts) {
    var div = el("div", { id: id }); parent.appendChild(div);
    var o = {
      title: title, width: width(), height: 260, scales: { x: { time: false } },
      axes: [{ label: "seconds" }, { label: opts.ylabel }],
      series: [{ label: "t (s)" }].concat(series.map(function (s, k) { return Object.assign({ label: s.label, stroke: COLORS[k % COLORS.length], width: 1.5 }, opts.series || {}); })),
    };
    return new uPlot(o, [xs].concat(series.map(function (s) { return s.values; })), div);
  }

  var clip = section("clip", "CLIP similarity per prompt");
  if (D.clip && D.clip.t.length) {
    report.charts.clip = lineChart(clip, "clip-chart", "cosine similarity", D.clip.t, D.clip.prompts.map(function (p, k) { return { label: p, values: D.clip.similarity[k] }; }), { ylabel: "similarity" });
  } else clip.appendChild(el("p", { class: "empty", text: "no CLIP artifact in this run" }));

  var det = section("detections", "Detections per class");
  if (D.detections) {
    var names = Object.keys(D.detections.per_class);
    if (names.length) report.charts.detections = lineChart(det, "detections-chart", "detections per frame", D.detections.t, names.map(function (n) { return { label: n, values: D.detections.per_class[n] }; }), { ylabel: "count", series: { paths: uPlot.paths.stepped({ align: 1 }) } });
    else det.appendChild(el("p", { class: "empty", text: "no detections in " + D.detections.t.length + " analysed frames" }));
  } else det.appendChild(el("p", { class: "empty", text: "no detections artifact in this run" }));

  var tr = section("tracks", "Tracks");
  if (D.tracks.length) {
    tr.appendChild(table(["best frame", "id", "class", "first seen (s)", "last seen (s)", "length (s)", "frames"], D.tracks.map(function (k) {
      var img = k.thumb ? el("img", { src: k.thumb, alt: "track " + k.id }) : el("span", { class: "empty", text: "-" });
      return cells([img, k.id, k.class_name, +k.first.toFixed(3), +k.last.toFixed(3), +(k.last - k.first).toFixed(3), k.frames], { "data-track": k.id });
    }), "tracks-table"));
  } else tr.appendChild(el("p", { class: "empty", text: D.detections ? "no tracks" : "no detections artifact in this run" }));

  var dp = section("depth", "Depth");
  if (D.depth.length) dp.appendChild(el("div", { class: "strip", id: "depth-strip" }, D.depth.map(function (d) { return el("figure", {}, [el("img", { src: d.img, alt: "depth at " + d.t + " s" }), el("figcaption", { text: fmt(d.t, 1) + " s" })]); })));
  else dp.appendChild(el("p", { class: "empty", text: "no depth artifact in this run" }));

  var pk = section("frames", "Annotated frames");
  if (D.picker.length) {
    var input = el("input", { type: "range", min: "0", max: String(D.picker.length - 1), value: "0", step: "1", id: "frame-picker" });
    var label = el("div", { id: "frame-time" });
    var img = el("img", { id: "frame-image", alt: "annotated frame" });
    var show = function () { var f = D.picker[+input.value]; img.src = f.img; img.setAttribute("data-t", f.t); label.textContent = fmt(f.t, 2) + " s" + (report.sceneAt ? ", scene: " + report.sceneAt(f.t) : ""); };
    input.addEventListener("input", show);
    pk.appendChild(el("div", { class: "picker" }, [input, label, img]));
    show();
  } else pk.appendChild(el("p", { class: "empty", text: "no frames from the video in this report" }));
})();
`;

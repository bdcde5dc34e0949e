import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../artifacts/atomic.js";
import { MANIFEST_FILE, writeManifest, type Manifest, type ReportRecord } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";
import { ALL_LAYERS, Annotator, depthImage } from "../render/annotate.js";
import { trackColor } from "../render/colors.js";
import { pixelRegion, shadedToRgb, strokeRect, type RgbCanvas } from "../render/raster.js";
import { loadRun, type RunData } from "../render/run-data.js";
import { runVideo } from "../render/render.js";
import { readFrames } from "../video/frame-reader.js";
import { MAX_PICKER_FRAMES, spread, type CapturedImages } from "./capture.js";
import { PAGE_SCRIPT, PAGE_STYLE } from "./page.js";

/** The report's file name in the run folder. */
export const REPORT_FILE = "report.html";

export interface ReportOptions {
  /** Longest side of the frame picker's JPEG thumbnails (default 320). */
  maxSide?: number;
  /** JPEG quality of every thumbnail (default 70). */
  quality?: number;
  /** Most frames the picker offers (default 60), spread evenly over the run. */
  maxPickerFrames?: number;
  /** Cap on the bytes of all images in the page (default 4 MiB): picker frames are thinned until they fit. */
  imageBytesCap?: number;
  /** Depth thumbnails in the strip (default 12). */
  depthThumbnails?: number;
  /** The video, when it is no longer where the manifest says. */
  video?: string;
  /** The picker's frames and the tracks' crops taken during the run (ReportCapture): the video is not decoded. */
  captured?: CapturedImages;
  signal?: AbortSignal;
}

type Sharp = (typeof import("sharp"))["default"];

async function jpeg(sharp: Sharp, img: RgbCanvas, maxSide: number, quality: number): Promise<string> {
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize({ width: maxSide, height: maxSide, fit: "inside", withoutEnlargement: true })
    .jpeg({ quality })
    .toBuffer();
  return `data:image/jpeg;base64,${buf.toString("base64")}`;
}

function crop(img: RgbCanvas, x1: number, y1: number, x2: number, y2: number): RgbCanvas {
  const { x: xa, y: ya, w, h } = pixelRegion(img.width, img.height, x1, y1, x2, y2);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((ya + y) * img.width + xa) * 3, ((ya + y) * img.width + xa + w) * 3), y * w * 3);
  return { width: w, height: h, data: out };
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

/** The tracks of a run: id, class, first and last time, frames seen, and the row of its best (highest score) box. */
export function trackList(run: RunData): Array<{ id: number; class_name: string; first: number; last: number; frames: number; best_row: number }> {
  const det = run.detections;
  if (!det) return [];
  const tracks = new Map<number, { id: number; class_name: string; first: number; last: number; frames: number; best_row: number }>();
  det.rows.forEach((b, i) => {
    if (b.trackId < 0) return;
    const t = det.rowTime[i]!;
    const k = tracks.get(b.trackId);
    if (!k) tracks.set(b.trackId, { id: b.trackId, class_name: det.classNames[b.classId] ?? `class ${b.classId}`, first: t, last: t, frames: 1, best_row: i });
    else {
      k.first = Math.min(k.first, t);
      k.last = Math.max(k.last, t);
      k.frames++;
      if (b.score > det.rows[k.best_row]!.score) k.best_row = i;
    }
  });
  return [...tracks.values()].sort((a, b) => a.id - b.id);
}

/** The data embedded in the page (snake_case, like everything the SDK writes). */
async function pageData(run: RunData, o: Required<Omit<ReportOptions, "video" | "signal" | "captured">> & Pick<ReportOptions, "video" | "signal" | "captured">) {
  const m = run.manifest;
  const { default: sharp } = await import("sharp");
  const det = run.detections;
  const tracks = trackList(run);
  const thumbs = new Map<number, string>();
  let picker: Array<{ t: number; img: string }> = [];
  let noFrames: string | undefined;

  // Frames from the video: the picker's annotated frames and each track's best box.
  const analysed = det?.frames ?? run.scene ?? run.clip ?? run.depth;
  const times = analysed ? Array.from(analysed.timestamp) : [];
  const pickerRows = new Set(spread(times.length, o.maxPickerFrames));
  const bestByFrame = new Map<number, number[]>();
  for (const k of tracks) {
    const f = det!.rowFrame[k.best_row]!;
    bestByFrame.set(f, [...(bestByFrame.get(f) ?? []), k.best_row]);
  }
  const frameIndex = analysed ? Array.from(analysed.frameIndex) : [];
  const wanted = new Set<number>([...pickerRows].map((r) => frameIndex[r]!).concat([...bestByFrame.keys()]));
  const lastWanted = Math.max(-1, ...wanted);
  const pickerJpegs: Array<{ t: number; img: string }> = [];
  if (o.captured) {
    // Taken during the run: the picker's frames are annotated here at the size they were taken (the
    // annotator scales the boxes from the display size), the crops framed in their track's colour.
    const annotators = new Map<string, Annotator>();
    for (const f of o.captured.picker) {
      o.signal?.throwIfAborted();
      const size = `${f.width}x${f.height}`;
      if (!annotators.has(size)) annotators.set(size, await Annotator.create(run, { ...ALL_LAYERS }, f.width, f.height));
      const data = await sharp(await f.jpeg).removeAlpha().raw().toBuffer();
      const img = { width: f.width, height: f.height, data };
      await annotators.get(size)!.draw(img, f.t);
      pickerJpegs.push({ t: r3(f.t), img: await jpeg(sharp, img, o.maxSide, o.quality) });
    }
    for (const k of tracks) {
      const c = o.captured.crops.get(k.id);
      if (!c) continue;
      const [x1, y1, x2, y2] = c.box;
      strokeRect(c.crop, x1, y1, x2, y2, c.thickness, trackColor(k.id, c.classId));
      thumbs.set(k.id, await jpeg(sharp, c.crop, 96, o.quality));
    }
  } else if (wanted.size > 0) {
    let video: string | undefined;
    try {
      video = runVideo(run, o.video);
    } catch (e) {
      noFrames = (e as Error).message;
    }
    if (video) {
      const annotator = await Annotator.create(run, { ...ALL_LAYERS }, m.video.display_width, m.video.display_height);
      const reader = readFrames(video, { fps: m.analysis.fps, ...(o.signal ? { signal: o.signal } : {}) });
      reader.on("error", () => {});
      try {
        for await (const f of reader) {
          if (f.index > lastWanted) break;
          if (wanted.has(f.index)) {
            const drawn = await annotator.draw(f, f.timestamp);
            for (const row of bestByFrame.get(f.index) ?? []) {
              const b = det!.rows[row]!;
              const pad = drawn[0]?.thickness ?? 2;
              thumbs.set(b.trackId, await jpeg(sharp, crop(f, b.x1 - pad, b.y1 - pad, b.x2 + pad, b.y2 + pad), 96, o.quality));
            }
            if (pickerRows.has(frameIndex.indexOf(f.index))) pickerJpegs.push({ t: r3(f.timestamp), img: await jpeg(sharp, f, o.maxSide, o.quality) });
          }
          reader.recycle(f.data);
        }
      } finally {
        reader.destroy();
      }
    }
  }
  o.signal?.throwIfAborted();

  // Depth strip.
  const depth: Array<{ t: number; img: string }> = [];
  if (run.depth) {
    const d = run.depth;
    const w = 128;
    const h = Math.max(1, Math.round((w * m.video.display_height) / m.video.display_width));
    for (const row of spread(d.timestamp.length, o.depthThumbnails)) {
      const img = shadedToRgb(depthImage((await d.reader.row("depth", row)).data, d.size, w, h));
      depth.push({ t: r3(d.timestamp[row]!), img: await jpeg(sharp, img, w, o.quality) });
    }
  }

  // The cap: picker frames are thinned (every other one dropped) until every image fits.
  const size = (xs: Array<{ img: string }>) => xs.reduce((n, x) => n + x.img.length, 0);
  const fixed = size(depth) + [...thumbs.values()].reduce((n, s) => n + s.length, 0);
  picker = pickerJpegs;
  while (picker.length > 1 && fixed + size(picker) > o.imageBytesCap) picker = picker.filter((_, i) => i % 2 === 0);
  if (fixed + size(picker) > o.imageBytesCap) picker = [];

  const perClass: Record<string, number[]> = {};
  if (det) {
    const pos = new Map<number, number>(Array.from(det.frames.frameIndex, (f, i) => [f, i]));
    det.rows.forEach((b, i) => {
      const name = det.classNames[b.classId] ?? `class ${b.classId}`;
      const counts = (perClass[name] ??= new Array<number>(det.frames.frameIndex.length).fill(0));
      counts[pos.get(det.rowFrame[i]!)!]!++;
    });
  }
  const clip = run.clip;
  const p = clip?.prompts.length ?? 0;
  const data = {
    title: basename(m.video.path),
    created_at: m.created_at,
    sdk: m.sdk,
    video: {
      path: m.video.path, width: m.video.display_width, height: m.video.display_height, codec: m.video.codec,
      fps: r3(m.video.frame_rate), duration: r3(m.video.duration), frames: m.video.frame_count ?? null,
    },
    analysis: { width: m.analysis.width, height: m.analysis.height, fps: m.analysis.fps, frames: m.analysis.frames, first: m.analysis.first_timestamp, last: m.analysis.last_timestamp },
    profile: m.profile?.name ?? null,
    wall_ms: m.timings?.wall_ms ?? null,
    models: (m.models_used ?? []).map((u) => ({ slot: u.slot, name: u.name, branch: u.branch, backend: u.backend, calls: u.calls, p50_ms: u.latency_ms?.p50 ?? null, p95_ms: u.latency_ms?.p95 ?? null })),
    scene: run.scene ? { t: Array.from(run.scene.timestamp, r3), label: run.scene.label, score: Array.from(run.scene.score, r3) } : null,
    clip: clip ? { t: Array.from(clip.timestamp, r3), prompts: clip.prompts, similarity: clip.prompts.map((_, k) => Array.from({ length: clip.timestamp.length }, (_, i) => r3(clip.similarity[i * p + k]!))) } : null,
    detections: det ? { t: Array.from(det.frames.timestamp, r3), per_class: perClass } : null,
    tracks: tracks.map((k) => ({ id: k.id, class_name: k.class_name, first: r3(k.first), last: r3(k.last), frames: k.frames, thumb: thumbs.get(k.id) ?? null })),
    depth,
    picker,
  };
  const record: ReportRecord = {
    file: REPORT_FILE,
    bytes: 0,
    thumbnails: {
      max_side: o.maxSide, jpeg_quality: o.quality, picker_frames: picker.length, max_picker_frames: o.maxPickerFrames,
      track_thumbnails: thumbs.size, depth_thumbnails: depth.length, image_bytes: fixed + size(picker), image_bytes_cap: o.imageBytesCap,
    },
    frames_from: o.captured ? "run" : "video",
    ...(noFrames ? { no_frames: noFrames } : {}),
  };
  return { data, record };
}

let uplot: { js: string; css: string } | undefined;

/** uPlot's minified script and style, from its npm package, to inline into the page. */
async function uplotAssets(): Promise<{ js: string; css: string }> {
  if (!uplot) {
    const req = createRequire(import.meta.url);
    const dir = join(req.resolve("uplot/package.json"), "..", "dist");
    // Its licence travels with it: MIT asks for the notice in every copy.
    const licence = await readFile(join(dir, "..", "LICENSE"), "utf8");
    uplot = { js: `/* uPlot, ${licence.replace(/\*\//g, "* /")} */\n${await readFile(join(dir, "uPlot.iife.min.js"), "utf8")}`, css: await readFile(join(dir, "uPlot.min.css"), "utf8") };
  }
  return uplot;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
/** JSON or script text safe inside a <script> element. */
const scriptSafe = (s: string) => s.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");

/**
 * Builds the run's report page (one self-contained HTML file: uPlot, styles, data and images inlined; no
 * network) and writes it atomically into the run folder. `manifest` given: that one (a run writing its
 * report before its manifest); else the folder's manifest.json is read and, unless `updateManifest` is
 * false, rewritten with the report's record.
 */
export async function writeReport(runDir: string, options: ReportOptions & { manifest?: Manifest; updateManifest?: boolean } = {}): Promise<ReportRecord> {
  const o = {
    maxSide: options.maxSide ?? 320,
    quality: options.quality ?? 70,
    maxPickerFrames: options.maxPickerFrames ?? MAX_PICKER_FRAMES,
    imageBytesCap: options.imageBytesCap ?? 4 << 20,
    depthThumbnails: options.depthThumbnails ?? 12,
    ...(options.video ? { video: options.video } : {}),
    ...(options.captured ? { captured: options.captured } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  for (const [k, v] of Object.entries({ maxSide: o.maxSide, quality: o.quality, maxPickerFrames: o.maxPickerFrames, imageBytesCap: o.imageBytesCap, depthThumbnails: o.depthThumbnails })) {
    if (!Number.isInteger(v) || v < (k === "maxPickerFrames" || k === "depthThumbnails" ? 0 : 1) || (k === "quality" && v > 100))
      throw new VideoAnalysisError("INVALID_ARGUMENT", `report: ${k} must be a positive whole number${k === "quality" ? " up to 100" : ""}, got ${String(v)}`);
  }
  const run = await loadRun(runDir, options.manifest);
  try {
    const { data, record } = await pageData(run, o);
    const { js, css } = await uplotAssets();
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<link rel="icon" href="data:,">
<title>${esc(data.title)}: video-analysis report</title>
<style>${css}\n${PAGE_STYLE}</style>
</head><body>
<h1>${esc(data.title)}</h1>
<div id="app"></div>
<script>${scriptSafe(js)}</script>
<script type="application/json" id="report-data">${scriptSafe(JSON.stringify(data))}</script>
<script>${scriptSafe(PAGE_SCRIPT)}</script>
</body></html>
`;
    options.signal?.throwIfAborted();
    record.bytes = Buffer.byteLength(html);
    await writeFileAtomic(join(runDir, REPORT_FILE), html);
    if (!options.manifest && options.updateManifest !== false) {
      const manifest = { ...run.manifest, report: record };
      await writeManifest(join(runDir, MANIFEST_FILE), manifest as Manifest);
    }
    return record;
  } finally {
    await run.close();
  }
}

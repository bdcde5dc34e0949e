// The SDK's YOLO paths on the same pixels, for test_yolo_scores_exact.py: `main` (ModelManager.run on the
// video, writing detections.npz), `process()` on the decoded frames, and the single-frame `detect()` on
// each image. Decoded pixels are written as raw RGB so the Python reference starts from the same bytes.
// Usage: node test/python/yolo_paths.mjs JOB.json; prints a JSON summary on stdout.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { ModelManager } from "../../dist/src/pipeline/model-manager.js";
import { readFrames } from "../../dist/src/video/frame-reader.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const off = { enabled: false };
const profile = {
  version: 1,
  name: "yolo_paths",
  backend: { embedded: { models: { yolo11n_640: job.model }, intra_op_threads: 2, workers: 1 } },
  // Every frame of the video, at its own size: the letterbox is the only resize.
  analysis: { fps: job.fps, max_side: null, sparse_decode: false },
  components: {
    core_depth_midas: off,
    core_optical_flow: off,
    scene: off,
    core_object_detections: { architecture: "yolo11n", branches: [640], tracker: { enabled: false } },
  },
};
const records = (d) => Array.from({ length: d.length }, (_, i) => ({ class_id: d.classIds[i], score: d.scores[i], box: Array.from(d.xyxy.subarray(4 * i, 4 * i + 4)) }));

const mm = await ModelManager.fromProfile(profile);
const out = { frames: [], process: [], images: [] };
try {
  await mm.run(job.video, { out: job.run_dir, maxFrames: job.frames });
  const frames = [];
  for await (const f of readFrames(job.video, { fps: job.fps, sparse: false })) {
    frames.push({ width: f.width, height: f.height, data: f.data.slice(), timestamp: f.timestamp });
    if (frames.length === job.frames) break;
  }
  frames.forEach((f, i) => {
    const file = join(job.tmp, `frame_${i}.rgb`);
    writeFileSync(file, f.data);
    out.frames.push({ file, width: f.width, height: f.height, timestamp: f.timestamp });
  });
  for await (const r of mm.process(frames.map(({ width, height, data }) => ({ width, height, data })), { fps: job.fps })) out.process.push(records(r.detections));
  for (const image of job.images) {
    const { data, info } = await sharp(image, { autoOrient: true, ignoreIcc: true }).removeAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    const file = join(job.tmp, `${out.images.length}.rgb`);
    writeFileSync(file, data);
    const d = await mm.detect({ width: info.width, height: info.height, data: new Uint8Array(data) });
    out.images.push({ image, file, width: info.width, height: info.height, detect: records(d) });
  }
} finally {
  await mm.close();
}
console.log(JSON.stringify(out));

/**
 * A Node processing script: one video through a profile's components, the run folder written, then a few
 * single-frame calls on the video's first frame.
 *
 *   npm run build
 *   node dist/examples/process-video.js examples/data/demo.mp4 [profiles/embedded_cpu.yaml] [runs/example]
 *
 * In an application, import from the package instead: `import { ModelManager, readFrames } from "video-analysis-sdk"`.
 */
import { formatProgress, ModelManager, readFrames } from "../src/index.js";

const [video, profile = "profiles/embedded_cpu.yaml", out = "runs/example"] = process.argv.slice(2);
if (!video) {
  console.error("usage: node dist/examples/process-video.js VIDEO [PROFILE] [OUT]");
  process.exit(2);
}

// Ctrl-C stops the run cleanly: ffmpeg is killed and nothing is left in `out`.
const controller = new AbortController();
process.once("SIGINT", () => controller.abort());

const mm = await ModelManager.fromProfile(profile);
try {
  const { manifest, out: folder } = await mm.run(video, {
    out,
    overwrite: true,
    signal: controller.signal,
    onProgress: (p) => p.frames % 5 === 0 && console.log(formatProgress(p)),
  });
  console.log(`${manifest.analysis.frames} frames analysed at ${manifest.analysis.width}x${manifest.analysis.height} -> ${folder}`);
  for (const u of manifest.models_used) console.log(`  ${u.slot}: ${u.branch} (${u.calls} calls, p50 ${u.latency_ms?.p50} ms)`);
  for (const a of manifest.artifacts) console.log(`  ${a.path}: ${Object.keys(a.arrays).join(", ")}`);

  // Single frames: the first analysis frame of the video, through each component on its own.
  for await (const frame of readFrames(video, { fps: 1, width: manifest.analysis.width, height: manifest.analysis.height })) {
    const depth = await mm.depth(frame);
    const scene = await mm.scene(frame);
    const dets = await mm.detect(frame);
    const clip = await mm.clip(frame);
    console.log(`frame 0: depth ${depth.width}x${depth.height}, scene "${scene.top[0]?.label}", ${dets.length} detections, best prompt "${clip.top[0]?.prompt}"`);
    break; // closing the loop stops ffmpeg
  }
} finally {
  await mm.close();
}

/**
 * Embedding the SDK in a larger media pipeline: frames come from elsewhere (here a generator drawing a
 * square that moves across a gradient; in practice a camera, a decoder, a WebRTC track), results go out
 * as they are ready, in order, with no files. An AbortSignal ends it (here after 3 seconds of the 10 s
 * stream, or Ctrl-C).
 *
 *   npm run build
 *   node dist/examples/embed-pipeline.js [profiles/embedded_cpu.yaml] [frames]
 *
 * Each result is printed as one JSON line: frame index, timestamp, top scene, detections, flow magnitude.
 */
import { ModelManager, type RgbFrame } from "../src/index.js";

const [profile = "profiles/embedded_cpu.yaml", count = "100"] = process.argv.slice(2);
const WIDTH = 320;
const HEIGHT = 180;
const FPS = 10;

/** The "other pipeline": yields frames as they are produced, and stops when the consumer stops. */
async function* camera(n: number): AsyncGenerator<RgbFrame> {
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(WIDTH * HEIGHT * 3);
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < WIDTH; x++) {
        const o = (y * WIDTH + x) * 3;
        const inSquare = x >= 20 + i * 8 && x < 80 + i * 8 && y >= 60 && y < 120;
        data[o] = inSquare ? 230 : x % 256;
        data[o + 1] = inSquare ? 40 : y;
        data[o + 2] = inSquare ? 40 : 128;
      }
    }
    yield { width: WIDTH, height: HEIGHT, data, index: i, timestamp: i / FPS };
    await new Promise((r) => setTimeout(r, 1000 / FPS)); // frames arrive in real time
  }
}

// The host pipeline's stop button: after 3 seconds here, or Ctrl-C.
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), 3000);
process.once("SIGINT", () => controller.abort());
const signal = controller.signal;

const mm = await ModelManager.fromProfile(profile);
try {
  for await (const r of mm.process(camera(Number(count)), { signal, fps: FPS })) {
    let flow = null;
    if (r.flow) {
      let sum = 0;
      const plane = r.flow.width * r.flow.height;
      for (let p = 0; p < plane; p++) sum += Math.hypot(r.flow.data[p]!, r.flow.data[plane + p]!);
      flow = +(sum / plane).toFixed(3);
    }
    console.log(JSON.stringify({
      frame: r.index,
      t: r.timestamp,
      scene: r.scene?.top[0]?.label,
      prompt: r.clip?.top[0]?.prompt,
      detections: r.detections?.length,
      tracks: r.detections?.trackIds ? [...new Set(r.detections.trackIds)].length : 0,
      mean_flow: flow,
    }));
  }
  console.log("done");
} catch (e) {
  if ((e as { code?: string }).code !== "CANCELLED") throw e;
  console.log("stopped by the signal");
} finally {
  clearTimeout(timer);
  await mm.close();
}

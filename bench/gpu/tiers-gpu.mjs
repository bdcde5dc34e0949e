// `bench tiers` against a tritonserver already serving the tracks repository (bench/gpu/serve.sh with
// SOURCE = a `triton-repo --tracks` output), on a machine without sharp: the images come decoded by
// bench/gpu/tiers-images.py and the SDK's own letterbox makes tracks B/C's pixels.
//
//   node bench/gpu/tiers-gpu.mjs --url 127.0.0.1:8001 --images /tmp/tiers-img/images.json [--model yolo11x_640] [--size 640]
//        [--requests 256] [--repeats 3] [--max-in-flight 32]
// Prints one JSON object: the rows of each repeat (track, model, in_flight, images_per_s, p50_ms, p95_ms, ...).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { TritonClient } = await import("../../dist/src/triton/client.js");
const { letterbox, daliLetterboxGeometry } = await import("../../dist/src/preprocess/letterbox.js");
const { tierRows } = await import("../../dist/bench/tiers-load.js");

const { values: v } = parseArgs({
  options: {
    url: { type: "string", default: "127.0.0.1:8001" },
    images: { type: "string" },
    model: { type: "string", default: "yolo11x_640" },
    size: { type: "string", default: "640" },
    requests: { type: "string", default: "256" },
    repeats: { type: "string", default: "3" },
    "max-in-flight": { type: "string", default: "32" },
  },
});
const size = Number(v.size);
const images = JSON.parse(readFileSync(v.images, "utf8")).map((x) => {
  const rgb = new Uint8Array(readFileSync(x.rgb));
  const lb = letterbox({ width: x.width, height: x.height, channels: 3, data: rgb }, size);
  return { jpeg: new Uint8Array(readFileSync(x.file)), pixels: lb.image.data, info: lb.info, dali: daliLetterboxGeometry(x.width, x.height, size) };
});
const client = await TritonClient.create({ url: v.url });
const repeats = [];
try {
  // One unmeasured pass: cuDNN's algorithm search and the stubs' first batches of every size.
  await tierRows(client, v.model, size, images, { requests: 64, maxInFlight: Number(v["max-in-flight"]) });
  for (let r = 0; r < Number(v.repeats); r++) {
    const rows = await tierRows(client, v.model, size, images, { requests: Number(v.requests), maxInFlight: Number(v["max-in-flight"]) });
    for (const row of rows) console.error(JSON.stringify({ repeat: r, ...row }));
    repeats.push(rows);
  }
} finally {
  await client.close();
}
console.log(JSON.stringify({ model: v.model, images: images.length, repeats }));

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { readImageRgb } from "../src/preprocess/decode-image.js";
import { daliLetterboxGeometry, letterbox } from "../src/preprocess/letterbox.js";
import sharp from "sharp";
import { encodeJpeg, jpegPassThrough } from "../src/preprocess/jpeg.js";
import { TritonClient } from "../src/triton/client.js";
import { startRealTriton } from "../test/support/real-tritonserver.js";
import { testdataDir } from "../test/support/testdata.js";
import { buildTracksRepository } from "../test/support/tracks-repository.js";
import { printTable } from "./stats.js";
import { tierRows } from "./tiers-load.js";

const USAGE = "video-analysis bench tiers [--requests N] [--in-flight N] [--queue-timeout-us US] [--json]";

/** What encoding a frame for track D costs: median ms and bytes per frame size and quality (zidane.jpg resized). */
async function encodeCost(): Promise<Array<{ frame: string; quality: number; ms: number; kb: number; vs_track_b_640: string }>> {
  const src = await readImageRgb(join(testdataDir, "images", "zidane.jpg"));
  const out = [];
  for (const [w, h] of [[768, 432], [1280, 720], [1920, 1080]] as const) {
    const raw = await sharp(src.data, { raw: { width: src.width, height: src.height, channels: 3 } }).resize(w, h, { fit: "fill" }).raw().toBuffer();
    const frame = { width: w, height: h, channels: 3 as const, data: new Uint8Array(raw) };
    for (const quality of [75, 90, 95]) {
      const ms: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        bytes = (await encodeJpeg(frame, quality)).bytes.length;
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      out.push({ frame: `${w}x${h}`, quality, ms: Math.round(ms[5]! * 10) / 10, kb: Math.round(bytes / 1024), vs_track_b_640: `${((640 * 640 * 3) / bytes).toFixed(1)}x` });
    }
  }
  return out;
}

/**
 * Tracks B, C and D (each tier) of yolo11n 640 on the CPU tritonserver with the stand-ins of
 * test/support/tracks-repository.ts, over the shared test images: throughput and latency per tier with
 * the client keeping `in-flight` requests going (default: the tier's max batch, at most 32).
 */
export const tiersBench: Benchmark = {
  summary: "tracks B, C, D and D's batching tiers on the CPU tritonserver (stand-ins): images/s, p50/p95",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench tiers", usage: USAGE }, argv, {
      requests: { type: "string", value: "N", description: "requests per track and tier (default 64)" },
      "in-flight": { type: "string", value: "N", description: "requests kept in flight (default: each tier's batch size, at most 32)" },
      "queue-timeout-us": { type: "string", value: "US", description: "dynamic batcher queue timeout written into the tiers' configs, in microseconds (default: none)" },
      json: { type: "boolean", description: "print one JSON object instead of the table" },
    });
    const requests = numberFlag("--requests", values.requests, 64, { min: 1 });
    const fixedInFlight = values["in-flight"] === undefined ? undefined : numberFlag("--in-flight", values["in-flight"], 8, { min: 1 });
    const queueTimeoutUs = values["queue-timeout-us"] === undefined ? undefined : numberFlag("--queue-timeout-us", values["queue-timeout-us"], 0, { min: 1 });
    const started = await startRealTriton({ build: (dest) => buildTracksRepository(dest, { queueTimeoutUs }), deadlineMs: 240_000 });
    if (!started.server) {
      console.error(`bench tiers: no tritonserver here: ${started.skip}`);
      return 3;
    }
    const server = started.server;
    const client = await TritonClient.create({ url: server.address });
    try {
      const files = readdirSync(join(testdataDir, "images")).filter((f) => f.endsWith(".jpg")).sort();
      const images = await Promise.all(
        files.map(async (f) => {
          const path = join(testdataDir, "images", f);
          const jpeg = await jpegPassThrough(new Uint8Array(readFileSync(path)), path);
          const lb = letterbox(await readImageRgb(path), 640);
          return { jpeg: jpeg.bytes, pixels: lb.image.data, info: lb.info, dali: daliLetterboxGeometry(jpeg.width, jpeg.height, 640) };
        }),
      );
      const rows = await tierRows(client, "yolo11n_640", 640, images, { requests, inFlight: fixedInFlight });
      const encode = await encodeCost();
      if (values.json) console.log(JSON.stringify({ server: "tritonserver 2.51 CPU (pytriton wheel), python-backend stand-ins", queue_timeout_us: queueTimeoutUs ?? "generated", rows, encode }));
      else {
        printTable(rows as unknown as Record<string, unknown>[]);
        console.log("\ntrack D's JPEG encode of a frame (sharp, 4:2:0), median of 10:");
        printTable(encode as unknown as Record<string, unknown>[]);
      }
      return 0;
    } finally {
      await client.close();
      await server.stop();
    }
  },
};

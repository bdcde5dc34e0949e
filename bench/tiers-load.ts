import { BATCHING_TIERS, TIER_SETTINGS, trackNames } from "../src/catalog/index.js";
import { decodeEnd2End, end2endOutputs } from "../src/detections/end2end.js";
import { YoloDecoder } from "../src/detections/yolo.js";
import type { LetterboxInfo } from "../src/preprocess/letterbox.js";
import { tensor, toFloat32, type Tensor } from "../src/tensor.js";
import type { TritonClient } from "../src/triton/client.js";

/**
 * The load of `bench tiers`, apart from how the server and the images are had: the CPU bench starts the
 * stand-in repository and reads the images with sharp (bench/tiers.ts); the GPU bench
 * (bench/gpu/tiers-gpu.mjs) talks to a tritonserver already up, on a machine without sharp. No sharp here.
 */

/** One test image as each track sends it. */
export interface TierImage {
  /** The JPEG file's bytes (track D). */
  jpeg: Uint8Array;
  /** The client's letterbox (tracks B and C): UINT8 [S, S, 3] and its geometry. */
  pixels: Uint8Array;
  info: LetterboxInfo;
  /** The server's (DALI's) letterbox geometry, to map track D's boxes back. */
  dali: LetterboxInfo;
}

export interface TierRow {
  track: string;
  model: string;
  in_flight: number;
  requests: number;
  ok: number;
  rejected: number;
  images_per_s: number;
  p50_ms: number;
  p95_ms: number;
  wire_kb_per_image: number;
  /** Detections per image, over the answers (a check that the answers were decoded, not only received). */
  detections_per_image: number;
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** `requests` calls, `inFlight` at a time, round-robin over the inputs; each returns its detection count. */
async function load(name: string, inFlight: number, requests: number, send: (i: number) => Promise<number>) {
  const ms: number[] = [];
  let rejected = 0;
  let found = 0;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const t = performance.now();
      try {
        const n = await send(i); // not `found += await`: that reads `found` before the await and loses the other workers' counts
        found += n;
        ms.push(performance.now() - t);
      } catch (e) {
        // The tier's queue policy (REJECT after its timeout, or a full queue) answers with an error.
        if (/timeout|queue|exceeds|rejected|unavailable/i.test((e as Error).message)) rejected++;
        else throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const s = (performance.now() - t0) / 1000;
  ms.sort((a, b) => a - b);
  const round1 = (v: number) => Math.round(v * 10) / 10;
  return {
    in_flight: inFlight,
    requests,
    ok: ms.length,
    rejected,
    images_per_s: round1(ms.length / s),
    p50_ms: round1(pct(ms, 50)),
    p95_ms: round1(pct(ms, 95)),
    detections_per_image: ms.length ? round1(found / ms.length) : 0,
  };
}

export interface TierLoadOptions {
  /** Requests per track and tier. */
  requests: number;
  /** Requests kept in flight for B and C, and for every tier when set (default per tier: its max batch, at most `maxInFlight`). */
  inFlight?: number;
  maxInFlight?: number;
}

/**
 * Tracks B, C and D (each batching tier) of one catalog YOLO (`base`, e.g. "yolo11n_640", at `size`),
 * every answer decoded as the SDK does: B's raw output through YoloDecoder (NMS in the client), C's and D's
 * End2End rows mapped back with the client's and the server's letterbox respectively.
 */
export async function tierRows(client: TritonClient, base: string, size: number, images: TierImage[], opts: TierLoadOptions): Promise<TierRow[]> {
  const e2e = (o: Record<string, Tensor>, info: LetterboxInfo) =>
    decodeEnd2End(end2endOutputs(o.num_dets!, o.det_boxes!, o.det_scores!, o.det_classes!), {}, info).length;
  const decoder = new YoloDecoder({});
  const pixelKb = Math.round((size * size * 3) / 1024);
  const jpegKb = Math.round(images.reduce((a, x) => a + x.jpeg.length, 0) / images.length / 1024);
  const shape = [1, size, size, 3];
  const inFlightBC = opts.inFlight ?? 8;
  const rows: TierRow[] = [];
  rows.push({
    track: "B",
    model: base,
    wire_kb_per_image: pixelKb,
    ...(await load(base, inFlightBC, opts.requests, async (i) => {
      const x = images[i % images.length]!;
      const out = (await client.infer(base, [tensor("INPUT__0", "UINT8", shape, x.pixels)])).outputs.OUTPUT__0!;
      return decoder.decode(toFloat32(out), out.shape, x.info, 0).length;
    })),
  });
  const c = trackNames(base, size).trackC;
  rows.push({
    track: "C",
    model: c,
    wire_kb_per_image: pixelKb,
    ...(await load(c, inFlightBC, opts.requests, async (i) => {
      const x = images[i % images.length]!;
      return e2e((await client.infer(c, [tensor("INPUT__0", "UINT8", shape, x.pixels)])).outputs, x.info);
    })),
  });
  for (const tier of BATCHING_TIERS) {
    const d = trackNames(base, size, tier).trackD;
    rows.push({
      track: `D ${tier}`,
      model: d,
      wire_kb_per_image: jpegKb,
      ...(await load(d, opts.inFlight ?? Math.min(opts.maxInFlight ?? 32, TIER_SETTINGS[tier].maxBatchSize), opts.requests, async (i) => {
        const x = images[i % images.length]!;
        return e2e((await client.infer(d, [tensor("INPUT__0", "UINT8", [1, x.jpeg.length], x.jpeg)])).outputs, x.dali);
      })),
    });
  }
  return rows;
}

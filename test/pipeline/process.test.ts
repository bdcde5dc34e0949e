// Frames from elsewhere (process), single-frame calls, the in-flight bound per model, and profiles as objects.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import type { FrameResult } from "../../src/pipeline/pipeline.js";
import type { RgbFrame } from "../../src/pipeline/frame.js";
import { contractBackend, EMBEDDED_PROFILE, ProbeBackend } from "./support.js";

function frame(i: number, width = 160, height = 120): RgbFrame {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < data.length; p++) data[p] = (p * 7 + i * 13) & 255;
  return { width, height, data };
}

/** An async source that records whether it was closed. */
function source(n: number, state: { closed: boolean; pulled: number }): AsyncIterable<RgbFrame> {
  return (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        state.pulled++;
        yield frame(i);
      }
    } finally {
      state.closed = true;
    }
  })();
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe("process(): frames in, results out", () => {
  let probe: ProbeBackend;
  let mm: ModelManager;
  before(async () => {
    probe = new ProbeBackend(await contractBackend());
    probe.delayMs = 15;
    mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { backend: probe, overrides: { concurrency: { max_in_flight: 2 } } });
  });
  after(async () => {
    await mm.close();
    await probe.close();
  });

  test("every component per frame, in order; flow from the previous frame; tracked detections", async () => {
    const state = { closed: false, pulled: 0 };
    const results: FrameResult[] = [];
    for await (const r of mm.process(source(6, state), { fps: 5 })) results.push(r);
    assert.deepEqual(results.map((r) => r.index), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(results.map((r) => r.timestamp), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.equal(results[0]!.flow, undefined);
    for (const r of results) {
      assert.equal(r.depth!.data.length, 256 * 256);
      assert.ok(Math.abs(norm(r.clip!.embedding) - 1) < 1e-5);
      assert.equal(r.clip!.similarity.length, 6);
      assert.equal(r.clip!.top.length, 3);
      assert.equal(r.scene!.top.length, 3);
      assert.ok(typeof r.scene!.top[0]!.label === "string");
      assert.ok(r.detections!.trackIds !== null, "tracked");
      assert.equal(r.detections!.frameIndex, r.index);
      for (let i = 0; i < r.detections!.xyxy.length; i += 4) {
        assert.ok(r.detections!.xyxy[i + 2]! <= 160 && r.detections!.xyxy[i + 3]! <= 120, "boxes in the frame's pixels");
      }
    }
    for (const r of results.slice(1)) {
      assert.equal(r.flow!.toIndex, r.index);
      assert.equal(r.flow!.fromIndex, r.index - 1);
      assert.equal(r.flow!.data.length, 2 * 256 * 256);
    }
    assert.ok(state.closed);
  });

  test("each model has at most concurrency.max_in_flight requests in flight, and models overlap", async () => {
    const state = { closed: false, pulled: 0 };
    for await (const _ of mm.process(source(8, state))) void _;
    for (const [model, n] of probe.maxInFlight) assert.ok(n <= 2, `${model}: ${n} in flight`);
    assert.ok([...probe.maxInFlight.values()].some((n) => n === 2), `some model reached 2 in flight: ${JSON.stringify([...probe.maxInFlight])}`);
    assert.ok(probe.maxTotalInFlight >= 4, `models ran at once: ${probe.maxTotalInFlight}`);
  });

  test("breaking out of the loop closes the source and waits for the calls in flight", async () => {
    const state = { closed: false, pulled: 0 };
    let n = 0;
    for await (const _ of mm.process(source(100, state))) {
      void _;
      if (++n === 2) break;
    }
    assert.ok(state.closed);
    assert.ok(state.pulled < 10, `pulled ${state.pulled}`);
    assert.equal(probe.inFlightNow, 0, "no call is left running");
  });

  test("an AbortSignal stops the stream with CANCELLED", async () => {
    const state = { closed: false, pulled: 0 };
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of mm.process(source(100, state), { signal: ac.signal })) {
          void _;
          if (++n === 2) ac.abort();
        }
      })(),
      (e: unknown) => e instanceof VideoAnalysisError && e.code === "CANCELLED",
    );
    assert.equal(n, 2);
    assert.ok(state.closed);
  });

  test("a frame whose data does not match its size is a RangeError naming it", async () => {
    const bad = { width: 10, height: 10, data: new Uint8Array(5) };
    await assert.rejects(
      (async () => {
        for await (const _ of mm.process([frame(0), bad])) void _;
      })(),
      (e: unknown) => e instanceof RangeError && /frame 1: 10x10 rgb24 needs 300 bytes/.test(e.message),
    );
  });
});

describe("single frames: mm.depth / flow / clip / clipText / scene / detect", () => {
  let mm: ModelManager;
  before(async () => {
    mm = await ModelManager.fromProfile(EMBEDDED_PROFILE);
  });
  after(() => mm.close());

  test("each call gives its component's result at the branch the frame routes to", async () => {
    const a = frame(0, 640, 360);
    const b = frame(1, 640, 360);
    const depth = await mm.depth(a);
    assert.deepEqual([depth.width, depth.height, depth.data.length], [512, 512, 512 * 512]);
    const flow = await mm.flow(a, b);
    assert.deepEqual([flow.fromIndex, flow.toIndex, flow.data.length], [0, 1, 2 * 512 * 512]);
    const clip = await mm.clip(a);
    assert.equal(clip.embedding.length, 512);
    assert.equal(clip.similarity.length, 6);
    const text = await mm.clipText("a photo of a dog");
    assert.equal(text.length, 512);
    assert.ok(Math.abs(norm(text) - 1) < 1e-5);
    const scene = await mm.scene(a);
    assert.equal(scene.top.length, 3);
    assert.ok(scene.top[0]!.score >= scene.top[1]!.score);
    const dets = await mm.detect(a);
    assert.equal(dets.trackIds, null);
    const used = Object.fromEntries(mm.modelsUsed().filter((u) => u.calls > 0).map((u) => [u.slot, u.branch]));
    assert.deepEqual(used, {
      core_depth_midas: "midas_512",
      core_optical_flow: "raft_512",
      "core_clip.image": "clip_image_448",
      "core_clip.text": "clip_text",
      scene: "places365_resnet50_448",
      core_object_detections: "yolo11n_640",
    });
  });

  test("a component the profile disables: FAILED_PRECONDITION saying what to enable", async () => {
    const only = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: { components: { core_object_detections: { enabled: false } } } });
    try {
      await assert.rejects(only.detect(frame(0)), (e: unknown) => e instanceof VideoAnalysisError && e.code === "FAILED_PRECONDITION" && /components\.core_object_detections/.test(e.message));
    } finally {
      await only.close();
    }
  });
});

describe("fromProfile", () => {
  test("an object profile (relative paths from baseDir) works like the file", async () => {
    const data = parse(readFileSync(EMBEDDED_PROFILE, "utf8")) as Record<string, unknown>;
    const mm = await ModelManager.fromProfile(data, { baseDir: dirname(EMBEDDED_PROFILE), overrides: { components: { core_clip: { enabled: false } } } });
    try {
      assert.equal(mm.profile.name, "embedded_cpu");
      assert.equal(mm.profile.components.core_clip!.enabled, false);
      assert.equal((await mm.depth(frame(0))).width, 256);
    } finally {
      await mm.close();
    }
  });

  test("overrides are validated like the file: errors name the key", async () => {
    await assert.rejects(
      ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: { analysis: { fps: -1 } } }),
      (e: unknown) => e instanceof VideoAnalysisError && e.code === "PROFILE_INVALID" && /analysis\.fps/.test(e.message),
    );
  });
});

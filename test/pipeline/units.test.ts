// The pipeline's small pieces: the in-flight limiter, latency figures, frame fitting, progress, columns.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { maskedProfile } from "../../src/artifacts/manifest.js";
import { Detections } from "../../src/detections/detections.js";
import { clipDetections, scaleDetections } from "../../src/components/detections/detections.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { Column } from "../../src/pipeline/columns.js";
import { FitPool } from "../../src/pipeline/fit-pool.js";
import { centerCropTo, checkFrame, FittedFrame, PixelPool, stretchTo } from "../../src/pipeline/frame.js";
import { sealedId } from "../../src/preprocess/normalize.js";
import { Limiter } from "../../src/pipeline/limiter.js";
import { formatProgress, ProgressMeter, ProgressReporter } from "../../src/pipeline/progress.js";
import { LatencyRecorder, percentile } from "../../src/pipeline/stats.js";
import { parseProfile } from "../../src/profiles/index.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("Limiter", () => {
  test("many waiters on one signal (an application's, shared by its calls) raise no MaxListenersExceededWarning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const l = new Limiter(1);
      const signal = new AbortController().signal;
      const held = await l.acquire(signal);
      const waits = Array.from({ length: 30 }, () => l.acquire(signal));
      held();
      for (const w of waits) (await w)();
      await tick();
      assert.deepEqual(warnings, []);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("at most `limit` holders; waiters served in arrival order", async () => {
    const l = new Limiter(2);
    const order: number[] = [];
    const r1 = await l.acquire();
    const r2 = await l.acquire();
    const w3 = l.acquire().then((r) => (order.push(3), r));
    const w4 = l.acquire().then((r) => (order.push(4), r));
    await tick();
    assert.deepEqual([l.inFlight, l.queued, order], [2, 2, []]);
    r1();
    r1(); // a second call is ignored
    const r3 = await w3;
    assert.deepEqual([l.inFlight, l.queued, order], [2, 1, [3]]);
    r2();
    (await w4)();
    r3();
    assert.deepEqual([l.inFlight, l.queued, order], [0, 0, [3, 4]]);
  });

  test("a wait is cancelled by its signal, with the signal's error", async () => {
    const l = new Limiter(1);
    const r = await l.acquire();
    const ac = new AbortController();
    const w = l.acquire(ac.signal);
    ac.abort(new VideoAnalysisError("CANCELLED", "stop"));
    await assert.rejects(w, /stop/);
    assert.equal(l.queued, 0);
    r();
    assert.equal(l.inFlight, 0);
  });

  test("limits are positive integers", () => {
    assert.throws(() => new Limiter(0), RangeError);
    assert.throws(() => new Limiter(1.5), RangeError);
  });
});

describe("latency figures", () => {
  test("p50, p95 and mean over every call", () => {
    const r = new LatencyRecorder();
    assert.equal(r.summary(), null);
    for (let i = 1; i <= 100; i++) r.add(i);
    assert.deepEqual(r.summary(), { p50: 50.5, p95: 95.05, mean: 50.5 });
    assert.equal(r.count, 100);
    assert.equal(percentile([1, 2], 50), 1.5);
  });
});

describe("fitting a frame to a branch", () => {
  const w = 64;
  const h = 36;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x * 4, y * 7, 100], (y * w + x) * 3);
  const img = { width: w, height: h, channels: 3, data };

  test("stretch: S x S, the image itself when it already is", () => {
    const s = stretchTo(img, 32);
    assert.deepEqual([s.width, s.height, s.data.length], [32, 32, 32 * 32 * 3]);
    assert.equal(stretchTo(s, 32), s);
  });

  test("centre crop: the central square (14 columns cut each side) resized to S", () => {
    const c = centerCropTo(img, 36);
    assert.deepEqual([c.width, c.height], [36, 36]);
    assert.equal(c.data[0], 14 * 4); // first column of the crop is source column 14
    assert.equal(c.data[(35 * 36 + 35) * 3 + 1], 35 * 7);
    const small = centerCropTo(img, 18);
    assert.deepEqual([small.width, small.height], [18, 18]);
  });

  test("letterbox: never enlarged, padded with 114, geometry for mapping back", async () => {
    const f = await new FittedFrame(img).get("letterbox", 96);
    assert.deepEqual([f.image.width, f.image.height], [96, 96]);
    assert.equal(f.letterbox!.scale, 1);
    assert.deepEqual([f.letterbox!.left, f.letterbox!.top], [16, 30]);
    assert.equal(f.image.data[0], 114);
  });

  test("a fitted version is made once per frame", async () => {
    const ff = new FittedFrame(img);
    assert.equal(await ff.get("stretch", 16), await ff.get("stretch", 16));
    assert.notEqual(await ff.get("stretch", 16), await ff.get("center_crop", 16));
  });

  test("fitted images are the SDK's own buffers, sealed; a frame already of the size is not", async () => {
    const ff = new FittedFrame(img);
    for (const [mode, size] of [["stretch", 16], ["center_crop", 16], ["letterbox", 96]] as const) {
      const { data } = (await ff.get(mode, size)).image;
      assert.notEqual(data, img.data, mode);
      assert.notEqual(sealedId(data), undefined, mode);
    }
    assert.deepEqual((await ff.get("center_crop", 16)).image.data, centerCropTo(img, 16).data);
    // A frame already of the size is handed back as it is: the caller's buffer, never sealed.
    const square = { width: 16, height: 16, channels: 3, data: new Uint8Array(16 * 16 * 3) };
    const same = (await new FittedFrame(square).get("stretch", 16)).image;
    assert.equal(same.data, square.data);
    assert.equal(sealedId(square.data), undefined);
  });

  // The same with the fitting on worker threads: the frame in shared memory, the result in the pool's.
  for (const workers of [0, 2]) {
    test(`pooled fitted images${workers ? ", fitted on worker threads" : ""}: the same pixels in shared buffers, given back on release and sealed anew when reused`, async () => {
      const shared = (data: Uint8Array) => {
        const d = new Uint8Array(new SharedArrayBuffer(data.length));
        d.set(data);
        return d;
      };
      const fitter = workers ? new FitPool(workers) : undefined;
      try {
        const pool = new PixelPool();
        const frame = { ...img, data: shared(img.data) };
        const ff = new FittedFrame(frame, pool, fitter);
        const modes = [["stretch", 16], ["center_crop", 16], ["letterbox", 96]] as const;
        const fitted = await Promise.all(modes.map(([mode, size]) => ff.get(mode, size)));
        const first = fitted.map((f) => f.image.data);
        for (const [i, [mode, size]] of modes.entries()) {
          const here = await new FittedFrame(img).get(mode, size);
          assert.ok(first[i]!.buffer instanceof SharedArrayBuffer, mode);
          assert.ok(Buffer.from(first[i]!).equals(Buffer.from(here.image.data)), mode);
          assert.deepEqual([fitted[i]!.image.width, fitted[i]!.image.height, fitted[i]!.letterbox], [here.image.width, here.image.height, here.letterbox], mode);
        }
        const ids = first.map((d) => sealedId(d));
        ff.release();
        // A second frame of other pixels gets the same memory, rewritten, under new seals.
        const other = { ...img, data: img.data.map((v) => 255 - v) };
        const again = new FittedFrame({ ...other, data: shared(other.data) }, pool, fitter);
        const buffers = new Set(first.map((d) => d.buffer));
        for (const [mode, size] of modes) {
          const d = (await again.get(mode, size)).image.data;
          assert.ok(buffers.delete(d.buffer), `${mode}: a buffer of the first frame is reused`);
          assert.ok(!ids.includes(sealedId(d)), `${mode}: new contents, new seal`);
          assert.ok(Buffer.from(d).equals(Buffer.from((await new FittedFrame(other).get(mode, size)).image.data)), mode);
        }
        // The caller's frame itself (already of the size) never goes into the pool.
        const square = { width: 16, height: 16, channels: 3, data: new Uint8Array(new SharedArrayBuffer(16 * 16 * 3)) };
        const sq = new FittedFrame(square, pool, fitter);
        assert.equal((await sq.get("stretch", 16)).image.data, square.data);
        sq.release();
        assert.notEqual(pool.take(16 * 16 * 3).buffer, square.data.buffer);
      } finally {
        await fitter?.close();
      }
    });
  }

  test("fitting workers: close() rejects the fits still pending, and later frames are fitted here", async () => {
    const fitter = new FitPool(1);
    const data = new Uint8Array(new SharedArrayBuffer(640 * 360 * 3));
    const frame = { width: 640, height: 360, channels: 3, data };
    const pending = assert.rejects(fitter.fit(frame, "stretch", 512, 114, new Uint8Array(new SharedArrayBuffer(512 * 512 * 3))), (e: unknown) => e instanceof VideoAnalysisError && e.code === "FAILED_PRECONDITION");
    await fitter.close();
    await pending;
    assert.equal(fitter.accepts(frame), false);
    const f = await new FittedFrame(frame, new PixelPool(), fitter).get("stretch", 512);
    assert.equal(f.image.data.length, 512 * 512 * 3);
  });

  test("frames are checked at the boundary", () => {
    assert.throws(() => checkFrame({ width: 2, height: 2, data: new Uint8Array(11) }), /2x2 rgb24 needs 12 bytes, data has 11/);
    assert.throws(() => checkFrame({ width: 2, height: 2, data: [1, 2] as unknown as Uint8Array }), TypeError);
    assert.throws(() => checkFrame({ width: 0, height: 2, data: new Uint8Array(0) }), RangeError);
  });
});

describe("detection boxes to the video's pixels", () => {
  test("scaled from the analysis frame and clipped", () => {
    const d = Detections.fromRecords([{ box: [10, 10, 330, 100], score: 0.9, classId: 0 }], 3);
    const s = scaleDetections(d, 320, 180, 640, 360);
    assert.deepEqual(s.toRecords()[0]!.box, [20, 20, 640, 200]);
    assert.equal(s.frameIndex, 3);
    assert.equal(clipDetections(s, 640, 360), s);
    assert.deepEqual(clipDetections(Detections.fromRecords([{ box: [-3, 5, 700, 400], score: 1, classId: 1 }]), 640, 360).box(0), [0, 5, 640, 360]);
  });
});

describe("progress", () => {
  test("frames, percentage, fps and ETA in one line", () => {
    assert.equal(
      formatProgress({ frames: 120, total: 279, elapsedMs: 15_000, fps: 8, etaMs: 19_875 }),
      "120/279 frames   43%  8.0 fps  0:15 elapsed  ETA 0:20",
    );
    assert.equal(formatProgress({ frames: 3, total: null, elapsedMs: 500, fps: 6, etaMs: null }), "3 frames  6.0 fps  0:01 elapsed");
    const m = new ProgressMeter(10);
    const p = m.tick();
    assert.equal(p.frames, 1);
    assert.equal(p.total, 10);
  });

  test("a bar on a terminal, plain lines elsewhere, nothing when quiet", () => {
    let text = "";
    const tty = { isTTY: true, columns: 100, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
    assert.equal(ProgressReporter.modeFor(tty, false), "bar");
    assert.equal(ProgressReporter.modeFor({ isTTY: false }, false), "lines");
    assert.equal(ProgressReporter.modeFor(tty, true), "none");
    const bar = new ProgressReporter(tty, "bar");
    bar.update({ frames: 5, total: 10, elapsedMs: 1000, fps: 5, etaMs: 1000 });
    bar.done();
    assert.match(text, /^\r\[#+-+\] 5\/10 frames   50%  5\.0 fps  0:01 elapsed  ETA 0:01\x1b\[K\n$/);
  });
});

describe("columns and the manifest's profile", () => {
  test("a column grows past its first capacity", () => {
    const c = new Column(Float32Array, 2);
    for (let i = 0; i < 100; i++) c.push(i, -i);
    assert.equal(c.rows, 100);
    assert.deepEqual([...c.values().subarray(198)], [99, -99]);
    assert.throws(() => c.push(1), RangeError);
  });

  test("header values are masked unless output.mask_secrets is false", () => {
    const yaml = (mask: boolean) =>
      `version: 1\nname: t\nbackend:\n  triton:\n    url: h:8001\n    headers: { authorization: Bearer xyz }\ncomponents:\n  scene: {}\noutput:\n  mask_secrets: ${mask}\n`;
    assert.deepEqual(maskedProfile(parseProfile(yaml(true), "t.yaml")).backend.triton!.headers, { authorization: "***" });
    assert.deepEqual(maskedProfile(parseProfile(yaml(false), "t.yaml")).backend.triton!.headers, { authorization: "Bearer xyz" });
  });
});

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { planFrames, probeVideo, readFrames, type Frame, type ReadFramesOptions } from "../../src/video/index.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";
import { ffmpegRun, ffprobeJson, makeRotated, makeVideo, meanAbsDiff, referenceFrames, tempDir, truncateCopy } from "./fixtures.js";

const tmp = tempDir();
const files: Record<string, string> = {};

before(() => {
  // testsrc2 moves from frame to frame, so a wrong frame would not match the reference.
  files.v30 = makeVideo(tmp.dir, "v30.mp4", { size: "320x240", rate: 30, seconds: 3, pattern: "testsrc2" });
  files.v10 = makeVideo(tmp.dir, "v10.mp4", { size: "320x240", rate: 10, seconds: 2, pattern: "testsrc2" });
  files.ntsc = makeVideo(tmp.dir, "ntsc.mp4", { size: "160x120", rate: 30000 / 1001, seconds: 2, pattern: "testsrc2", extra: ["-r", "30000/1001"] });
  files.ts = join(tmp.dir, "with-audio.ts");
  ffmpegRun([
    "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=d=3",
    "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", files.ts,
  ]);
  files.rotated = makeRotated(files.v10, join(tmp.dir, "rotated.mp4"));
  const fast = makeVideo(tmp.dir, "fast.mp4", { size: "320x240", rate: 10, seconds: 4, pattern: "testsrc2", extra: ["-movflags", "+faststart"] });
  files.truncStart = truncateCopy(fast, join(tmp.dir, "trunc.mp4"), 0.5);
  // 3000 scrambled bytes a third of the way in: damaged packets in the middle, the file complete.
  const clean = makeVideo(tmp.dir, "clean.mp4", { size: "320x240", rate: 10, seconds: 4, pattern: "testsrc2" });
  const b = readFileSync(clean);
  for (let i = Math.floor(b.length / 3); i < Math.floor(b.length / 3) + 3000; i++) b[i] = (b[i]! * 7 + 13) & 255;
  files.corrupt = join(tmp.dir, "corrupt.mp4");
  writeFileSync(files.corrupt, b);
});
after(() => tmp.cleanup());

async function collect(path: string, options: ReadFramesOptions = {}): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of readFrames(path, options)) out.push(f);
  return out;
}

function close(a: number, b: number, eps = 1e-6): boolean {
  return Math.abs(a - b) <= eps;
}

describe("readFrames", () => {
  for (const shared of [false, true]) {
    test(`recycled frame buffers${shared ? " (in shared memory)" : ""} are filled again with the right frames`, async () => {
      const ref = referenceFrames(files.v30!, 320, 240);
      const reader = readFrames(files.v30!, { shared });
      const buffers = new Set<ArrayBufferLike>();
      let i = 0;
      let held: Frame | undefined;
      for await (const f of reader as AsyncIterable<Frame>) {
        assert.ok(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).equals(ref[i]!), `frame ${i} differs from ffmpeg's`);
        buffers.add(f.data.buffer);
        assert.equal(f.data.buffer instanceof SharedArrayBuffer, shared);
        // Each frame is given back once the next one has been read (as the pipeline does), except one
        // that is kept for good, and a buffer the reader did not make, which it must ignore.
        if (held && held.index !== 10) reader.recycle(held.data);
        reader.recycle(new Uint8Array(f.data.length));
        held = f;
        i++;
      }
      assert.equal(i, 90);
      // A handful of buffers served 90 frames: the reader's read-ahead plus the one kept.
      assert.ok(buffers.size < 12, `${buffers.size} buffers for 90 frames`);
    });
  }

  test("every source frame when fps is omitted: rgb24 at display size, timestamps i / rate", async () => {
    const frames = await collect(files.v30!);
    assert.equal(frames.length, 90);
    const ref = referenceFrames(files.v30!, 320, 240);
    frames.forEach((f, i) => {
      assert.equal(f.index, i);
      assert.ok(close(f.timestamp, i / 30, 1e-4), `frame ${i} at ${f.timestamp}`);
      assert.equal(f.width, 320);
      assert.equal(f.height, 240);
      assert.equal(f.data.length, 320 * 240 * 3);
      assert.ok(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).equals(ref[i]!), `frame ${i} differs from ffmpeg's`);
    });
  });

  test("fps 5 from 30: the first frame of each 0.2 s slot, its real timestamp and its picture", async () => {
    const frames = await collect(files.v30!, { fps: 5 });
    assert.equal(frames.length, 15);
    const ref = referenceFrames(files.v30!, 320, 240);
    frames.forEach((f, i) => {
      assert.equal(f.index, i);
      assert.ok(close(f.timestamp, i * 0.2, 1e-4), `frame ${i} at ${f.timestamp}`);
      const src = Math.round(f.timestamp * 30);
      assert.equal(src, 6 * i);
      assert.ok(Buffer.from(f.data).equals(ref[src]!), `analysis frame ${i} is not source frame ${src}`);
    });
  });

  test("fps 4 from 29.97 (NTSC): timestamps are source pts, never grid times", async () => {
    const frames = await collect(files.ntsc!, { fps: 4 });
    const period = 1001 / 30000;
    assert.equal(frames.length, 8);
    frames.forEach((f, i) => {
      // The first source frame at or after i * 0.25 s.
      const k = Math.ceil((i * 0.25) / period - 1e-9);
      assert.ok(close(f.timestamp, k * period, 1e-4), `frame ${i}: ${f.timestamp} vs ${k * period}`);
    });
  });

  test("MPEG-TS (container starting at 1.4 s): timestamps are source pts minus the container start", async () => {
    const m = await probeVideo(files.ts!);
    assert.ok(m.containerStartTime > 1, `container start ${m.containerStartTime}`);
    const probe = ffprobeJson(files.ts!, "-select_streams v -show_entries frame=pts_time") as { frames: { pts_time: string }[] };
    const source = probe.frames.map((f) => Number(f.pts_time));
    const frames = await collect(files.ts!, { fps: 5, metadata: m });
    assert.equal(frames.length, 15);
    assert.ok(close(frames[0]!.timestamp, m.startTime, 1e-4), `${frames[0]!.timestamp} vs startTime ${m.startTime}`);
    frames.forEach((f, i) => {
      const src = f.timestamp + m.containerStartTime;
      assert.ok(source.some((s) => close(s, src, 1e-5)), `frame ${i}: ${src} is not a source pts`);
      // The first source frame of slot i (slots of 0.2 s from the container start).
      const first = source.filter((s) => s - m.containerStartTime >= i * 0.2 - 1e-6).sort((a, b) => a - b)[0]!;
      assert.ok(close(src, first, 1e-5), `frame ${i}: ${src} vs ${first}`);
    });
  });

  test("a source slower than fps gives every source frame once, no duplicates", async () => {
    const frames = await collect(files.v10!, { fps: 25 });
    assert.equal(frames.length, 20);
    frames.forEach((f, i) => assert.ok(close(f.timestamp, i / 10, 1e-4)));
  });

  test("analysis size: width only keeps the aspect ratio, both are exact; matches ffmpeg's area scaling", async () => {
    const a = await collect(files.v10!, { fps: 5, width: 160 });
    assert.deepEqual([a[0]!.width, a[0]!.height, a[0]!.data.length], [160, 120, 160 * 120 * 3]);
    const b = await collect(files.v10!, { fps: 5, width: 100, height: 50 });
    assert.deepEqual([b[0]!.width, b[0]!.height, b[0]!.data.length], [100, 50, 100 * 50 * 3]);
    const c = await collect(files.v10!, { fps: 5, height: 60 });
    assert.deepEqual([c[0]!.width, c[0]!.height], [80, 60]);
    const ref = referenceFrames(files.v10!, 160, 120, "area");
    a.forEach((f) => assert.ok(Buffer.from(f.data).equals(ref[Math.round(f.timestamp * 10)]!)));
  });

  test("planFrames picks area to shrink and bilinear to enlarge", async () => {
    const m = await probeVideo(files.v10!);
    assert.equal(planFrames(m, { width: 160 }).scaleFlags, "area");
    assert.equal(planFrames(m, { width: 640 }).scaleFlags, "bilinear");
    assert.equal(planFrames(m, {}).scaleFlags, "area");
    assert.equal(planFrames(m, { fps: 5 }).estimatedFrames, 10);
    assert.equal(planFrames(m, {}).estimatedFrames, 20);
  });

  test("a rotated phone video is turned upright like ffmpeg's autorotation", async () => {
    const m = await probeVideo(files.rotated!);
    const frames = await collect(files.rotated!, { metadata: m });
    assert.equal(frames.length, 20);
    assert.deepEqual([frames[0]!.width, frames[0]!.height], [240, 320]);
    // Reference: plain ffmpeg, which rotates before it scales (here: no resize at all).
    const ref = referenceFrames(files.rotated!, 240, 320);
    frames.forEach((f, i) => assert.ok(meanAbsDiff(f.data, ref[i]!) < 0.5, `frame ${i}`));
    // Scaled: ffmpeg rotates the YUV picture and then scales it, readFrames scales and then rotates the
    // RGB result. Luma agrees; chroma differs a little because ffmpeg's order moves the 4:2:0 chroma
    // siting onto the other axis (readFrames' order keeps it where the encoder put it).
    const small = await collect(files.rotated!, { metadata: m, width: 120, fps: 5 });
    assert.deepEqual([small[0]!.width, small[0]!.height], [120, 160]);
    const refSmall = referenceFrames(files.rotated!, 120, 160, "area");
    small.forEach((f) => assert.ok(meanAbsDiff(luma(f.data), luma(refSmall[Math.round(f.timestamp * 10)]!)) < 1));
  });

  test("truncated file whose index survives: frames, then VIDEO_INVALID naming the file", async () => {
    const metadata = await probeVideo(files.truncStart!, { checkEnd: false });
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const f of readFrames(files.truncStart!, { metadata })) seen.push(f.timestamp);
      })(),
      (e: unknown) =>
        e instanceof VideoAnalysisError && e.code === "VIDEO_INVALID" && e.message.includes(files.truncStart!) && /truncated/.test(e.message),
    );
    assert.ok(seen.length < 40, `${seen.length} frames from a file cut in half`);
  });

  test("damage in the middle: concealed by default (errors counted), refused with strict", async () => {
    const reader = readFrames(files.corrupt!);
    let n = 0;
    for await (const _ of reader) n++;
    assert.ok(n >= 30, `${n} frames`);
    assert.ok(reader.stats.ffmpegErrors > 0);
    await assert.rejects(collect(files.corrupt!, { strict: true }), (e: unknown) =>
      e instanceof VideoAnalysisError && e.code === "VIDEO_INVALID" && e.message.includes(files.corrupt!) && /decoding errors/.test(e.message),
    );
  });

  test("ffmpeg failing -> VIDEO_INVALID with ffmpeg's own error line", async () => {
    const metadata = { ...(await probeVideo(files.v10!)), streamIndex: 7 };
    await assert.rejects(collect(files.v10!, { metadata }), (e: unknown) => {
      assert.ok(e instanceof VideoAnalysisError);
      assert.equal(e.code, "VIDEO_INVALID");
      assert.ok(e.message.includes(files.v10!));
      assert.match(e.message, /exited with code \d+ \(.*matches no streams/);
      return true;
    });
  });

  test("AbortSignal: ffmpeg is killed and the iteration throws CANCELLED", async () => {
    const ac = new AbortController();
    const reader = readFrames(files.v30!, { signal: ac.signal });
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of reader) {
          if (++n === 2) ac.abort();
        }
      })(),
      (e: unknown) => e instanceof VideoAnalysisError && e.code === "CANCELLED" && e.message.includes(files.v30!),
    );
    assert.equal(n, 2);
    await assertGone(reader.stats.ffmpegPid);
  });

  test("an already aborted signal: CANCELLED before ffmpeg starts", async () => {
    await assert.rejects(collect(files.v10!, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "CANCELLED");
  });

  test("leaving the loop early (break) kills ffmpeg", async () => {
    const reader = readFrames(files.v30!);
    for await (const f of reader) if (f.index === 3) break;
    assert.ok(reader.destroyed);
    await assertGone(reader.stats.ffmpegPid);
  });

  test("bad options are refused at the call: TypeError / RangeError", () => {
    assert.throws(() => readFrames(files.v10!, { fps: 0 }), RangeError);
    assert.throws(() => readFrames(files.v10!, { fps: Number.NaN }), TypeError);
    assert.throws(() => readFrames(files.v10!, { width: 10.5 }), TypeError);
    assert.throws(() => readFrames(files.v10!, { height: 0 }), RangeError);
    assert.throws(() => readFrames(files.v10!, { highWaterMarkFrames: 0 }), RangeError);
    assert.throws(() => readFrames(""), TypeError);
  });

  test("people_768x432_10fps.mp4 at 5 fps, 384 wide", { skip: skipUnlessTestdata("video", "people_768x432_10fps.mp4") }, async () => {
    const reader = readFrames(testdata("video", "people_768x432_10fps.mp4"), { fps: 5, width: 384 });
    let n = 0;
    let last: Frame | undefined;
    for await (const f of reader) {
      assert.equal(f.index, n);
      assert.ok(close(f.timestamp, n * 0.2, 1e-4), `frame ${n} at ${f.timestamp}`);
      assert.equal(f.data.length, 384 * 216 * 3);
      last = f;
      n++;
    }
    assert.equal(n, 697);
    assert.ok(close(last!.timestamp, 139.2, 1e-4));
    assert.equal(reader.metadata?.frameCount, 1394);
  });

  test("sintel_1280x720_23frames.mp4: all 23 frames", { skip: skipUnlessTestdata("video", "sintel_1280x720_23frames.mp4") }, async () => {
    const frames = await collect(testdata("video", "sintel_1280x720_23frames.mp4"), { width: 320 });
    assert.equal(frames.length, 23);
    frames.forEach((f, i) => assert.ok(close(f.timestamp, i / 24, 1e-4)));
  });

  test("bottles_640x360_30fps.mp4 (179/6 fps) at 5 fps", { skip: skipUnlessTestdata("video", "bottles_640x360_30fps.mp4") }, async () => {
    const m = await probeVideo(testdata("video", "bottles_640x360_30fps.mp4"));
    let n = 0;
    let prev = -1;
    for await (const f of readFrames(m.path, { fps: 5, width: 160, metadata: m })) {
      // Each frame is the first of its 0.2 s slot: within one source frame of the slot's start.
      assert.ok(f.timestamp >= n * 0.2 - 1e-6 && f.timestamp < n * 0.2 + 6 / 179 + 1e-6, `frame ${n} at ${f.timestamp}`);
      assert.ok(f.timestamp > prev);
      prev = f.timestamp;
      n++;
    }
    assert.equal(n, Math.ceil(m.duration * 5 - 1e-9));
  });
});

/** BT.601 luma of an rgb24 picture, rounded to bytes. */
function luma(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!);
  return out;
}

/** Waits until process `pid` no longer exists. */
async function assertGone(pid: number | undefined): Promise<void> {
  assert.ok(pid !== undefined, "ffmpeg had started");
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
  assert.fail(`ffmpeg (pid ${pid}) is still running`);
}

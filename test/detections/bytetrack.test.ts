import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BYTETRACK_DEFAULTS, ByteTrack, resolveByteTrackOptions } from "../../src/detections/byte-track.js";
import { Detections } from "../../src/detections/detections.js";
import { formatMot, parseMot } from "../../src/detections/mot.js";
import { DetectionTracker } from "../../src/components/detections/detections.js";
import { isVideoAnalysisError } from "../../src/errors.js";
import { trackerSchema, type TrackerSettings } from "../../src/profiles/schema.js";
import { repoRoot, skipUnlessTestdata } from "../support/testdata.js";
import { compareWithReference, loadPalace } from "./palace.js";

const skip = skipUnlessTestdata("bytetrack", "palace_detections.json") || skipUnlessTestdata("bytetrack", "palace_tracks.json");

test("palace: the cpp variant reproduces ByteTrack-cpp's tracks (ids per frame equal, boxes within 0.01)", { skip }, () => {
  const palace = loadPalace();
  const tracker = new ByteTrack({ variant: "cpp", frameRate: palace.fps, trackBuffer: palace.trackBuffer, trackThresh: 0.5, highThresh: 0.6, matchThresh: 0.8 });
  const out = palace.frames.map((d) => tracker.update(d));
  const { idMismatches, maxError, boxes } = compareWithReference(palace, out);
  assert.deepEqual(idMismatches, [], `frames whose track ids differ: ${idMismatches.slice(0, 10).join(", ")}`);
  assert.equal(boxes, 6008);
  assert.ok(maxError < 0.01, `largest coordinate difference ${maxError}`);
  const ids = new Set(out.flatMap((d) => [...d.trackIds!]));
  assert.equal(ids.size, 42);
});

test("palace through `video-analysis track` on MOTChallenge rows", { skip }, () => {
  const palace = loadPalace();
  const dir = mkdtempSync(join(tmpdir(), "va-track-"));
  try {
    const det = join(dir, "det.txt");
    // Full precision for the conversion itself; the CLI writes 3 decimals.
    writeFileSync(det, palace.frames.map((d) => formatMot(d, 6)).join(""));
    const out = join(dir, "tracks.txt");
    const stdout = execFileSync(process.execPath, [join(repoRoot, "dist/src/cli/main.js"), "track", "--mot-det", det, "--out", out, "--fps", String(palace.fps), "--variant", "cpp", "--json"], { encoding: "utf8" });
    assert.equal((JSON.parse(stdout) as { options: { box: string } }).options.box, "track", "the cpp variant reports the Kalman box, as its reference");
    const summary = JSON.parse(stdout) as { frames: number; tracks: number; track_boxes: number };
    assert.deepEqual([summary.frames, summary.tracks, summary.track_boxes], [314, 42, 6008]);
    const { frames } = parseMot(readFileSync(out, "utf8"), { source: out });
    const output = palace.frames.map((d) => frames.get(d.frameIndex + 1) ?? Detections.empty(d.frameIndex));
    const { idMismatches, maxError } = compareWithReference(palace, output);
    assert.deepEqual(idMismatches, []);
    assert.ok(maxError < 0.01, `largest coordinate difference ${maxError}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("palace: the python variant with the cpp switches (no fusion, no floor, last boxes) also reproduces it", { skip }, () => {
  // What remains different is the python variant's list order and strict score comparisons.
  const palace = loadPalace();
  const tracker = new ByteTrack({ variant: "python", fuseScore: false, lowThresh: -Infinity, matchOn: "last_box", highThresh: 0.6 });
  const { idMismatches, maxError } = compareWithReference(palace, palace.frames.map((d) => tracker.update(d)));
  assert.deepEqual(idMismatches, []);
  assert.ok(maxError < 0.01);
});

test("palace: the python variant tracks the same scene plausibly", { skip }, () => {
  const palace = loadPalace();
  const tracker = new ByteTrack({ variant: "python", frameRate: palace.fps });
  let boxes = 0;
  const ids = new Set<number>();
  for (const d of palace.frames) {
    const t = tracker.update(d);
    boxes += t.length;
    t.trackIds!.forEach((id) => ids.add(id));
  }
  // Different semantics, same scene: a similar amount of tracking, not the same numbers.
  assert.ok(boxes > 5000 && boxes < 7000, `${boxes} track boxes`);
  assert.ok(ids.size > 20 && ids.size < 80, `${ids.size} ids`);
});

const box = (x: number, y: number, s = 0.9, w = 40, h = 80) => ({ box: [x, y, x + w, y + h] as [number, number, number, number], score: s, classId: 2 });

test("a track is born, confirmed on its second frame, carried through a gap by low-score boxes, and ends", () => {
  const t = new ByteTrack({ variant: "python", trackBuffer: 3 });
  // Frame 1: tracks of the first frame are confirmed at once.
  assert.deepEqual([...t.update(Detections.fromRecords([box(100, 100)], 0)).trackIds!], [1]);
  // A second object appears: unconfirmed in its first frame, reported from its second.
  assert.deepEqual([...t.update(Detections.fromRecords([box(102, 100), box(300, 100)], 1)).trackIds!], [1]);
  const f3 = t.update(Detections.fromRecords([box(104, 100), box(302, 100)], 2));
  assert.deepEqual([...f3.trackIds!].sort(), [1, 2]);
  assert.deepEqual([...f3.classIds], [2, 2]);
  // Track 1 seen only by a low-score box (0.3): kept by the second association.
  assert.deepEqual([...t.update(Detections.fromRecords([box(106, 100, 0.3), box(304, 100)], 3)).trackIds!].sort(), [1, 2]);
  // Nothing for 6 frames: both lost, and removed after trackBuffer (3) frames. (Both references keep
  // a track in the lost list for one frame after its removal, so it could still be re-found there.)
  for (let f = 4; f < 10; f++) assert.equal(t.update(Detections.empty(f)).length, 0);
  t.update(Detections.fromRecords([box(108, 100)], 10));
  const again = t.update(Detections.fromRecords([box(110, 100)], 11));
  assert.deepEqual([...again.trackIds!], [3]);
  assert.equal(again.frameIndex, 11);
});

test("a lost track within the buffer is re-found with its id", () => {
  const t = new ByteTrack({ variant: "cpp" });
  t.update(Detections.fromRecords([box(100, 100)], 0));
  t.update(Detections.empty(1));
  t.update(Detections.empty(2));
  assert.deepEqual([...t.update(Detections.fromRecords([box(101, 100)], 3)).trackIds!], [1]);
});

test("an expired track stays matchable for one more frame, as in both references", () => {
  // trackBuffer 2: seen in frame 1, lost from frame 2, marked removed in frame 4 (4 - 1 > 2) but still
  // in the lost list during frame 5; gone from frame 6.
  const run = (reappearAt: number) => {
    const t = new ByteTrack({ variant: "cpp", trackBuffer: 2 });
    t.update(Detections.fromRecords([box(100, 100)], 0));
    for (let f = 1; f < reappearAt - 1; f++) t.update(Detections.empty(f));
    t.update(Detections.fromRecords([box(100, 100)], reappearAt - 1));
    return [...t.update(Detections.fromRecords([box(100, 100)], reappearAt)).trackIds!];
  };
  assert.deepEqual(run(5), [1]);
  assert.deepEqual(run(6), [2]);
});

test("reset() forgets tracks and restarts ids", () => {
  const t = new ByteTrack();
  t.update(Detections.fromRecords([box(100, 100), box(300, 100)], 0));
  t.reset();
  assert.equal(t.frameCount, 0);
  assert.deepEqual([...t.update(Detections.fromRecords([box(500, 100)], 0)).trackIds!], [1]);
});

test("score thresholds: cpp takes score == trackThresh as high, python does not; python drops <= 0.1", () => {
  // A lone detection at exactly 0.6 in frame 1: high in cpp (>= 0.5) and born (>= 0.6).
  assert.equal(new ByteTrack({ variant: "cpp", trackThresh: 0.6, highThresh: 0.6 }).update(Detections.fromRecords([box(0, 0, 0.6)])).length, 1);
  // python: 0.6 is not > trackThresh 0.6, so it is a low detection and never starts a track.
  assert.equal(new ByteTrack({ variant: "python", trackThresh: 0.6, highThresh: 0.6 }).update(Detections.fromRecords([box(0, 0, 0.6)])).length, 0);
});

test("ByteTrack options: defaults per variant, derived new-track threshold, checks", () => {
  // "default" by default, as profiles and the track command have it: python's association, detector boxes.
  const d = resolveByteTrackOptions();
  assert.deepEqual([d.variant, d.box, d.kalman, d.matchOn, d.fuseScore, d.lowThresh, d.highThresh], ["default", "detection", "xywh", "prediction", true, 0.1, 0.6]);
  assert.equal(resolveByteTrackOptions({ variant: "python" }).kalman, "xyah");
  assert.equal(resolveByteTrackOptions({ variant: "python" }).box, "track");
  assert.equal(resolveByteTrackOptions({ variant: "cpp" }).box, "track");
  assert.throws(() => resolveByteTrackOptions({ box: "kalman" as "track" }), RangeError);
  assert.throws(() => resolveByteTrackOptions({ trackThresh: 1.5 }), RangeError);
  assert.equal(resolveByteTrackOptions({ variant: "python", trackThresh: 0.4 }).highThresh, 0.5);
  assert.equal(resolveByteTrackOptions({ variant: "cpp", trackThresh: 0.4 }).highThresh, 0.6);
  assert.equal(BYTETRACK_DEFAULTS.cpp.fuseScore, false);
  assert.equal(BYTETRACK_DEFAULTS.python.lowThresh, 0.1);
  assert.throws(() => resolveByteTrackOptions({ matchThresh: 2 }), RangeError);
  assert.throws(() => resolveByteTrackOptions({ variant: "rust" as "cpp" }), RangeError);
  assert.throws(() => resolveByteTrackOptions({ fuseScore: 1 as unknown as boolean }), TypeError);
  assert.throws(() => resolveByteTrackOptions({ frameRate: 0 }), RangeError);
});

/** Tracker settings as a profile gives them (every knob resolved by the schema). */
const profileTracker = (t: Record<string, unknown>): TrackerSettings => trackerSchema.parse(t);

// Degenerate boxes: a frame of 640 x 360 whose boxes are clipped to nothing at every edge, plus one real box.
const W = 640;
const H = 360;
const edgeFrame = (i: number, extra: Array<[number, number, number, number]> = []) =>
  Detections.fromRecords(
    [
      ...([[0, 100, 0, 200], [W, 100, W, 200], [100, 0, 200, 0], [100, H, 200, H], [300, 300, 280, 340], [Number.NaN, 10, 50, 60]] as Array<[number, number, number, number]>).map((b) => ({ box: b, score: 0.9, classId: 0 })),
      { box: [200 + 3 * i, 100, 260 + 3 * i, 220] as [number, number, number, number], score: 0.9, classId: 0 },
      ...extra.map((b) => ({ box: b, score: 0.8, classId: 0 })),
    ],
    i,
  );

for (const variant of ["default", "python", "cpp"] as const) {
  for (const boxKind of ["detection", "track"] as const) {
    test(`degenerate boxes (zero width or height at every edge, NaN) are never tracked or reported: ${variant}, box ${boxKind}`, () => {
      const tracker = new DetectionTracker(
        profileTracker({ variant, box: boxKind }),
        30,
      );
      // A person leaving through the left edge: clipped narrower each frame, then to nothing.
      for (let i = 0; i < 12; i++) {
        const leaving: [number, number, number, number] = [0, 50, Math.max(0, 60 - 12 * i), 170];
        const out = tracker.update(edgeFrame(i, [leaving]), W, H);
        for (let k = 0; k < out.length; k++) {
          const [x1, y1, x2, y2] = out.box(k);
          assert.ok([x1, y1, x2, y2].every(Number.isFinite), `frame ${i}: box ${[x1, y1, x2, y2]}`);
          assert.ok(x2 > x1 && y2 > y1, `frame ${i}: box ${[x1, y1, x2, y2]} has no area`);
          assert.ok(x1 >= 0 && y1 >= 0 && x2 <= W && y2 <= H, `frame ${i}: box ${[x1, y1, x2, y2]} outside the frame`);
        }
        assert.ok(!formatMot(out).toLowerCase().includes("nan"));
        if (i > 0 && i < 3) assert.equal(out.length, 2, `frame ${i}: the real box and the leaving person are tracked`);
        if (i >= 3 && i < 5) assert.ok(out.length >= 1 && out.length <= 2, `frame ${i}: ${out.length} tracks`);
        if (i >= 5) assert.equal(out.length, 1, `frame ${i}: only the real box is left`);
      }
    });
  }
}

test("Detections.withoutDegenerateBoxes and formatMot leave out boxes without area or with NaN/Infinity", () => {
  const d = edgeFrame(0, [[10, 10, Number.POSITIVE_INFINITY, 20]]);
  assert.equal(d.length, 8);
  assert.equal(d.withoutDegenerateBoxes().length, 1);
  const rows = formatMot(d.withTrackIds(new Int32Array(8).fill(3))).trim().split("\n");
  assert.deepEqual(rows, ["1,3,200,100,60,120,0.9,-1,-1,-1"]);
  const clean = Detections.fromRecords([box(0, 0)]);
  assert.equal(clean.withoutDegenerateBoxes(), clean, "nothing to drop: the same object");
});

test("scores outside 0..1 are a coded error naming the frame and the score, not silently untracked", () => {
  for (const s of [1.5, -0.1, Number.NaN, 87]) {
    const t = new ByteTrack();
    assert.throws(
      () => t.update(Detections.fromRecords([box(0, 0, 0.9), box(100, 0, s)], 4)),
      (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT" && /frame index 4 has score/.test(e.message) && /0\.\.1/.test(e.message),
    );
  }
});

test("box: the default reports the matched detection's box, box track the Kalman filter's", () => {
  // A box that widens from 40 to 100 px: the Kalman box lags behind, the detection's does not.
  const frames = Array.from({ length: 6 }, (_, i) => Detections.fromRecords([{ box: [100, 100, 140 + 12 * i, 180] as [number, number, number, number], score: 0.9, classId: 0 }], i));
  const det = new ByteTrack();
  const trk = new ByteTrack({ box: "track" });
  for (const f of frames) {
    const a = det.update(f);
    const b = trk.update(f);
    assert.deepEqual(a.box(0), f.box(0));
    if (f.frameIndex > 0) assert.notDeepEqual(b.box(0), f.box(0));
    assert.deepEqual([...a.trackIds!], [...b.trackIds!]);
  }
});

test("`video-analysis track`: a det.txt with scores outside 0..1 stops with a clear message and writes nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), "va-track-"));
  try {
    const det = join(dir, "det.txt");
    writeFileSync(det, "1,-1,10,10,50,80,0.9,-1,-1,-1\n2,-1,12,10,50,80,35.2,-1,-1,-1\n");
    const out = join(dir, "tracks.txt");
    let err: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [join(repoRoot, "dist/src/cli/main.js"), "track", "--mot-det", det, "--out", out], { encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      err = e as { status: number; stderr: string };
    }
    assert.ok(err && err.status !== 0, "the command must fail");
    assert.match(err.stderr, /INVALID_ARGUMENT.*det\.txt: frame 2 has a detection with score 35\.2, outside 0\.\.1/);
    assert.doesNotMatch(err.stderr, /at .*\.js:\d+/, "no stack trace");
    assert.throws(() => readFileSync(out), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("palace: state() at any frame, restore() into a new tracker, and it goes on exactly (ids, boxes, lost tracks)", { skip }, () => {
  const palace = loadPalace();
  for (const variant of ["default", "cpp", "python"] as const) {
    const opts = { variant, frameRate: palace.fps, trackBuffer: palace.trackBuffer };
    const straight = new ByteTrack(opts);
    const want = palace.frames.map((d) => straight.update(d));
    for (const at of [1, 7, Math.floor(palace.frames.length / 2), palace.frames.length - 3]) {
      const first = new ByteTrack(opts);
      for (const d of palace.frames.slice(0, at)) first.update(d);
      // Through JSON, as the journal stores it.
      const state = JSON.parse(JSON.stringify(first.state()));
      assert.ok(state.lost.length + state.tracked.length > 0 || at === 1);
      const second = new ByteTrack(opts);
      second.restore(state);
      palace.frames.slice(at).forEach((d, i) => {
        const got = second.update(d);
        const w = want[at + i]!;
        assert.deepEqual([...got.trackIds!], [...w.trackIds!], `${variant}, restored at ${at}: ids of frame ${at + i}`);
        assert.deepEqual([...got.xyxy], [...w.xyxy], `${variant}, restored at ${at}: boxes of frame ${at + i}`);
        assert.deepEqual([...got.scores], [...w.scores]);
      });
    }
  }
});

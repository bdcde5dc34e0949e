import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BYTETRACK_DEFAULTS, ByteTrack, resolveByteTrackOptions } from "../../src/detections/byte-track.js";
import { Detections } from "../../src/detections/detections.js";
import { formatMot, parseMot } from "../../src/detections/mot.js";
import { repoRoot, skipUnlessTestdata } from "../support/testdata.js";
import { compareWithReference, loadPalace } from "./palace.js";

const skip = skipUnlessTestdata("bytetrack", "palace_detections.json") || skipUnlessTestdata("bytetrack", "palace_tracks.json");

test("palace: the cpp variant reproduces ByteTrack-cpp's tracks (ids per frame equal, boxes within 0.01)", { skip }, () => {
  const palace = loadPalace();
  const tracker = new ByteTrack({ variant: "cpp", frameRate: palace.fps, trackBuffer: palace.trackBuffer, trackThresh: 0.5, newTrackThresh: 0.6, matchThresh: 0.8 });
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
  const tracker = new ByteTrack({ variant: "python", fuseScore: false, lowThresh: -Infinity, matchPredicted: false, newTrackThresh: 0.6 });
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
  assert.equal(new ByteTrack({ variant: "cpp", trackThresh: 0.6, newTrackThresh: 0.6 }).update(Detections.fromRecords([box(0, 0, 0.6)])).length, 1);
  // python: 0.6 is not > trackThresh 0.6, so it is a low detection and never starts a track.
  assert.equal(new ByteTrack({ variant: "python", trackThresh: 0.6, newTrackThresh: 0.6 }).update(Detections.fromRecords([box(0, 0, 0.6)])).length, 0);
});

test("ByteTrack options: defaults per variant, derived new-track threshold, checks", () => {
  // cpp by default, as profiles and the track command have it.
  assert.equal(resolveByteTrackOptions().variant, "cpp");
  assert.equal(resolveByteTrackOptions({ variant: "python", trackThresh: 0.4 }).newTrackThresh, 0.5);
  assert.equal(resolveByteTrackOptions({ variant: "cpp", trackThresh: 0.4 }).newTrackThresh, 0.6);
  assert.equal(BYTETRACK_DEFAULTS.cpp.fuseScore, false);
  assert.equal(BYTETRACK_DEFAULTS.python.lowThresh, 0.1);
  assert.throws(() => resolveByteTrackOptions({ matchThresh: 2 }), RangeError);
  assert.throws(() => resolveByteTrackOptions({ variant: "rust" as "cpp" }), RangeError);
  assert.throws(() => resolveByteTrackOptions({ fuseScore: 1 as unknown as boolean }), TypeError);
  assert.throws(() => resolveByteTrackOptions({ frameRate: 0 }), RangeError);
});

test("palace: state() at any frame, restore() into a new tracker, and it goes on exactly (ids, boxes, lost tracks)", { skip }, () => {
  const palace = loadPalace();
  for (const variant of ["cpp", "python"] as const) {
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

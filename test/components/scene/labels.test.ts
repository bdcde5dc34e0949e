import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isVideoAnalysisError } from "../../../src/errors.js";
import {
  PLACES365_LABELS,
  indoorOutdoor,
  loadPlaces365Labels,
  parsePlaces365Labels,
  topK,
  topKIndices,
  type SceneLabel,
} from "../../../src/components/scene/labels.js";
import { softmaxRows } from "../../../src/components/softmax.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../../support/testdata.js";

const CATEGORIES = ["places365", "categories_places365.txt"] as const;
const IO = ["places365", "IO_places365.txt"] as const;
const DATA_MODULE = join(repoRoot, "src/components/scene/places365-labels.ts");
const skipFiles = skipUnlessTestdata(...CATEGORIES) || skipUnlessTestdata(...IO);

/**
 * The committed data module, as generated from the two Places365 files. The test below checks the
 * committed file against this; `UPDATE_PLACES365_LABELS=1` rewrites it.
 */
function renderDataModule(labels: readonly SceneLabel[]): string {
  const lines = labels.map((l) => `  [${JSON.stringify(l.path)}, ${l.indoor ? 1 : 2}],`);
  return [
    "// Generated: do not edit. The 365 Places365 categories in output order, each with its indoor (1) /",
    "// outdoor (2) flag, from categories_places365.txt and IO_places365.txt of CSAILVision/places365 @ 06218620",
    "// (MIT). test/components/scene/labels.test.ts checks this file against those files (in the shared test",
    "// data) and rewrites it when run with UPDATE_PLACES365_LABELS=1.",
    "export const PLACES365_CATEGORIES: ReadonlyArray<readonly [path: string, io: 1 | 2]> = [",
    ...lines,
    "];",
    "",
  ].join("\n");
}

test("the committed Places365 label list equals the Places365 files", { skip: skipFiles }, async () => {
  const fromFiles = await loadPlaces365Labels(testdata(...CATEGORIES), testdata(...IO));
  const expected = renderDataModule(fromFiles);
  if (process.env.UPDATE_PLACES365_LABELS === "1") writeFileSync(DATA_MODULE, expected);
  assert.equal(readFileSync(DATA_MODULE, "utf8"), expected, "run with UPDATE_PLACES365_LABELS=1 to regenerate");
  assert.deepEqual(PLACES365_LABELS, fromFiles);
});

test("the built-in list: 365 labels, indices, names, indoor flags", () => {
  assert.equal(PLACES365_LABELS.length, 365);
  PLACES365_LABELS.forEach((l, i) => assert.equal(l.index, i));
  assert.deepEqual(PLACES365_LABELS[0], { index: 0, path: "/a/airfield", label: "airfield", name: "airfield", indoor: false });
  assert.deepEqual(PLACES365_LABELS[1], {
    index: 1,
    path: "/a/airplane_cabin",
    label: "airplane_cabin",
    name: "airplane cabin",
    indoor: true,
  });
  assert.deepEqual(PLACES365_LABELS[8], {
    index: 8,
    path: "/a/apartment_building/outdoor",
    label: "apartment_building/outdoor",
    name: "apartment building (outdoor)",
    indoor: false,
  });
  assert.equal(PLACES365_LABELS[342]!.name, "underwater (ocean deep)");
  assert.equal(PLACES365_LABELS[364]!.label, "zen_garden");
  assert.equal(PLACES365_LABELS.filter((l) => l.indoor).length, 160);
  assert.ok(Object.isFrozen(PLACES365_LABELS) && Object.isFrozen(PLACES365_LABELS[0]));
});

test("parse: index order comes from the numbers, not the line order", () => {
  const labels = parsePlaces365Labels("/b/beach 1\n/a/alley 0\n", "/a/alley 2\n/b/beach 2\n");
  assert.deepEqual(
    labels.map((l) => [l.index, l.label]),
    [
      [0, "alley"],
      [1, "beach"],
    ],
  );
});

test("parse: malformed files give IO_ERROR naming the file", () => {
  const cases: Array<[string, string | undefined, RegExp]> = [
    ["/a/alley\n", undefined, /cats\.txt, line 1: expected/],
    ["/a/alley 0\n/b/beach 0\n", undefined, /index 0 appears twice/],
    ["/a/alley 0\n/b/beach 2\n", undefined, /index 1 is missing/],
    ["", undefined, /no categories/],
    ["/a/alley 0\n", "/a/alley 3\n", /io\.txt, line 1: expected/],
    ["/a/alley 0\n/b/beach 1\n", "/a/alley 1\n", /beach has no indoor\/outdoor flag/],
  ];
  for (const [cats, io, re] of cases) {
    assert.throws(
      () => parsePlaces365Labels(cats, io, { categories: "cats.txt", io: "io.txt" }),
      (e: unknown) => isVideoAnalysisError(e) && e.code === "IO_ERROR" && re.test(e.message),
      re.source,
    );
  }
});

test("loadPlaces365Labels: a missing file is an IO_ERROR naming it", async () => {
  await assert.rejects(loadPlaces365Labels("/nonexistent/categories.txt"), (e: unknown) =>
    isVideoAnalysisError(e) && e.code === "IO_ERROR" && e.message.includes("/nonexistent/categories.txt"),
  );
});

test("topKIndices: largest first, ties keep the lower index, k larger than n", () => {
  const v = [0.1, 0.5, 0.3, 0.5, 0.9, -1, 0.3];
  assert.deepEqual(topKIndices(v, 3), [4, 1, 3]);
  assert.deepEqual(topKIndices(v, 5), [4, 1, 3, 2, 6]);
  assert.deepEqual(topKIndices(v, 1), [4]);
  assert.deepEqual(topKIndices(v, 100), [4, 1, 3, 2, 6, 0, 5]);
  assert.deepEqual(topKIndices([], 3), []);
  // Against a full sort on random data.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const r = Array.from({ length: 365 }, rand);
  const sorted = r.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  assert.deepEqual(topKIndices(r, 10), sorted.slice(0, 10).map(([, i]) => i));
});

test("topK: softmax probabilities of the k best classes, with their labels", () => {
  const logits = new Float32Array(365).fill(-5);
  logits[8] = 4; // apartment building (outdoor)
  logits[1] = 3; // airplane cabin
  logits[200] = 2.5;
  const top = topK(logits, 3);
  const probs = softmaxRows(logits, 365);
  assert.deepEqual(
    top.map((t) => t.index),
    [8, 1, 200],
  );
  assert.equal(top[0]!.label, "apartment_building/outdoor");
  assert.equal(top[0]!.name, "apartment building (outdoor)");
  assert.equal(top[0]!.indoor, false);
  assert.equal(top[1]!.indoor, true);
  assert.equal(top[0]!.score, probs[8]);
  const z = Math.exp(4) + Math.exp(3) + Math.exp(2.5) + 362 * Math.exp(-5);
  assert.ok(Math.abs(top[0]!.score - Math.exp(4) / z) < 1e-7);
  assert.equal(topK(logits).length, 5);
  // Large logits do not overflow.
  const big = new Float32Array(365).fill(1000);
  big[3] = 1001;
  const t = topK(big, 1)[0]!;
  assert.equal(t.index, 3);
  assert.ok(Math.abs(t.score - Math.E / (Math.E + 364)) < 1e-7);
});

test("topK: wrong class count is a CONTRACT_MISMATCH, bad k an INVALID_ARGUMENT", () => {
  assert.throws(
    () => topK(new Float32Array(1000), 5, PLACES365_LABELS, "places365_resnet50_224"),
    (e: unknown) => isVideoAnalysisError(e) && e.code === "CONTRACT_MISMATCH" && e.model === "places365_resnet50_224",
  );
  assert.throws(() => topK(new Float32Array(365), 0), (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT");
});

test("indoorOutdoor: majority of the top-10 classes", () => {
  const indoorIdx = PLACES365_LABELS.filter((l) => l.indoor).map((l) => l.index);
  const outdoorIdx = PLACES365_LABELS.filter((l) => !l.indoor).map((l) => l.index);
  const logits = new Float32Array(365);
  indoorIdx.slice(0, 6).forEach((i, r) => (logits[i] = 10 - r));
  outdoorIdx.slice(0, 4).forEach((i, r) => (logits[i] = 20 - r)); // most likely, but only 4 of 10
  assert.deepEqual(indoorOutdoor(logits), { environment: "indoor", outdoorShare: 0.4 });
  outdoorIdx.slice(4, 6).forEach((i) => (logits[i] = 9.5));
  assert.equal(indoorOutdoor(logits).environment, "outdoor");
});

/**
 * Places365 scene labels and top-k selection over the scene model's `[1,365]` logits.
 *
 * The 365 categories ship with the SDK (places365-labels.ts, generated from CSAILVision/places365's
 * categories_places365.txt and IO_places365.txt), so nothing outside the package is read at run time.
 * Each label keeps three forms of its name:
 *   - `path`:  the category as the files write it, "/a/apartment_building/outdoor";
 *   - `label`: the path without its "/x/" letter folder, "apartment_building/outdoor" (what the
 *              Places365 demo code prints; stable, use it in artifacts and comparisons);
 *   - `name`:  readable, "apartment building (outdoor)".
 * and `indoor` from IO_places365.txt (1 indoor, 2 outdoor).
 */
import { readFile } from "node:fs/promises";
import { VideoAnalysisError } from "../../errors.js";
import { softmaxRows } from "../softmax.js";
import { topKIndices } from "../top-k.js";

export { topKIndices };
import { PLACES365_CATEGORIES } from "./places365-labels.js";

export interface SceneLabel {
  index: number;
  path: string;
  label: string;
  name: string;
  indoor: boolean;
}

export interface ScenePrediction {
  index: number;
  label: string;
  name: string;
  indoor: boolean;
  /** Softmax probability over all classes. */
  score: number;
}

/** "/a/apartment_building/outdoor" -> { label: "apartment_building/outdoor", name: "apartment building (outdoor)" }. */
function namesOf(path: string): { label: string; name: string } {
  const label = path.replace(/^\/[^/]\//, "");
  const [head = "", ...rest] = label.split("/");
  const words = (s: string) => s.replaceAll("_", " ");
  const name = rest.length ? `${words(head)} (${rest.map(words).join(", ")})` : words(head);
  return { label, name };
}

function makeLabel(index: number, path: string, io: number): SceneLabel {
  return { index, path, ...namesOf(path), indoor: io === 1 };
}

/** The 365 Places365 labels, index = the model's output position. */
export const PLACES365_LABELS: readonly SceneLabel[] = Object.freeze(
  PLACES365_CATEGORIES.map(([path, io], index) => Object.freeze(makeLabel(index, path, io))),
);

/**
 * Parses the two Places365 label files: categories (`/a/airfield 0`, one per line, the number being
 * the output index) and, optionally, indoor/outdoor (`/a/airfield 2`; 1 indoor, 2 outdoor). Every
 * index from 0 to n-1 must appear once; the IO file, when given, must name the same categories.
 * `source` names the files in errors.
 */
export function parsePlaces365Labels(
  categoriesText: string,
  ioText?: string,
  source: { categories?: string; io?: string } = {},
): SceneLabel[] {
  const catName = source.categories ?? "categories file";
  const ioName = source.io ?? "indoor/outdoor file";
  const bad = (file: string, line: number | undefined, why: string) =>
    new VideoAnalysisError("IO_ERROR", `${file}${line ? `, line ${line}` : ""}: ${why}.`, { details: { file, line } });
  const rows = (text: string) =>
    text
      .split(/\r?\n/)
      .map((s, i) => ({ line: i + 1, parts: s.trim().split(/\s+/) }))
      .filter((r) => r.parts[0] !== "");

  const paths: string[] = [];
  for (const { line, parts } of rows(categoriesText)) {
    const index = Number(parts[1]);
    if (parts.length !== 2 || !Number.isInteger(index) || index < 0) throw bad(catName, line, "expected `<category> <index>`");
    if (paths[index] !== undefined) throw bad(catName, line, `index ${index} appears twice`);
    paths[index] = parts[0]!;
  }
  if (paths.length === 0) throw bad(catName, undefined, "no categories");
  for (let i = 0; i < paths.length; i++) {
    if (paths[i] === undefined) throw bad(catName, undefined, `index ${i} is missing`);
  }

  const io = new Map<string, number>();
  if (ioText !== undefined) {
    for (const { line, parts } of rows(ioText)) {
      const flag = Number(parts[1]);
      if (parts.length !== 2 || (flag !== 1 && flag !== 2)) throw bad(ioName, line, "expected `<category> 1|2` (1 indoor, 2 outdoor)");
      io.set(parts[0]!, flag);
    }
    for (const p of paths) if (!io.has(p)) throw bad(ioName, undefined, `category ${p} has no indoor/outdoor flag`);
    if (io.size !== paths.length) throw bad(ioName, undefined, `${io.size} categories, the categories file has ${paths.length}`);
  }
  // Without an IO file nothing is known: every label reads as outdoor (indoor false).
  return paths.map((p, i) => makeLabel(i, p, io.get(p) ?? 2));
}

/** Reads a label list from files (a custom scene model, or the original Places365 files). */
export async function loadPlaces365Labels(categoriesPath: string, ioPath?: string): Promise<SceneLabel[]> {
  const read = async (p: string) => {
    try {
      return await readFile(p, "utf8");
    } catch (e) {
      throw new VideoAnalysisError("IO_ERROR", `Cannot read the scene label file ${p}: ${(e as Error).message}`, {
        details: { file: p },
        cause: e,
      });
    }
  };
  const [cats, io] = await Promise.all([read(categoriesPath), ioPath === undefined ? undefined : read(ioPath)]);
  return parsePlaces365Labels(cats, io, { categories: categoriesPath, io: ioPath });
}

function checkLogits(logits: ArrayLike<number>, labels: readonly SceneLabel[], model?: string): void {
  if (logits.length !== labels.length) {
    throw new VideoAnalysisError(
      "CONTRACT_MISMATCH",
      `Scene model output has ${logits.length} classes; the label list has ${labels.length}.`,
      { model, details: { classes: logits.length, labels: labels.length } },
    );
  }
}


/**
 * The k most likely scenes for one frame from the scene model's logits (`[1,365]`, pre-softmax),
 * most likely first, with their softmax probability as `score`.
 */
export function topK(
  logits: ArrayLike<number>,
  k = 5,
  labels: readonly SceneLabel[] = PLACES365_LABELS,
  model?: string,
): ScenePrediction[] {
  checkLogits(logits, labels, model);
  if (!Number.isInteger(k) || k < 1) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `Scene top-k must be a positive integer, got ${k}.`, { details: { k } });
  }
  // Softmax keeps the order: the top logits are the top probabilities.
  const probs = softmaxRows(logits, logits.length);
  return topKIndices(logits, k).map((i) => {
    const { index, label, name, indoor } = labels[i]!;
    return { index, label, name, indoor, score: probs[i]! };
  });
}

/**
 * Indoor or outdoor for one frame, as the Places365 demo decides it: the share of outdoor labels
 * among the `vote` (10) most likely classes; below 0.5 is indoor.
 */
export function indoorOutdoor(
  logits: ArrayLike<number>,
  labels: readonly SceneLabel[] = PLACES365_LABELS,
  vote = 10,
): { environment: "indoor" | "outdoor"; outdoorShare: number } {
  checkLogits(logits, labels);
  const top = topKIndices(logits, vote);
  const outdoor = top.filter((i) => !labels[i]!.indoor).length / top.length;
  return { environment: outdoor < 0.5 ? "indoor" : "outdoor", outdoorShare: outdoor };
}

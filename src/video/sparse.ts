/**
 * Sparse decoding: at an analysis rate below the source's, most decoded frames are thrown away by the
 * select filter. In H.264 a picture whose slices all have nal_ref_idc 0 is, by the standard, never used to
 * predict another picture (in HEVC, a sub-layer non-reference picture of the highest temporal layer), so
 * such a frame that the filter would not pick can be left out before decoding without changing a single
 * decoded pixel (libx264's and x265's defaults encode roughly half their B-frames that way).
 *
 * ffmpeg cannot be told "skip these packets", so the SDK gives it a copy of the file's index instead: the
 * MP4/MOV `moov` box with the video track's sample table rewritten to list only the frames to decode, each
 * at its original byte offset and with its original decode and presentation times. The input ffmpeg reads
 * is the original file's bytes (through ffmpeg's `subfile` protocol, never copied) with the old `moov`
 * turned into a `free` box, followed by the new `moov` (`concat` protocol). Nothing else changes: ffmpeg
 * demuxes, decodes and filters exactly as before, only fewer frames.
 *
 * The frames the select filter picks are worked out here from the sample table (the same arithmetic as the
 * filter's expression), and the frame reader checks every picked frame's pts against that list; a
 * difference (a file whose timestamps ffmpeg derives in a way not foreseen here) makes it decode the
 * whole file again, so the result is always the full decode's.
 */
import { readSync } from "node:fs";
import { mkdtemp, open, readdir, rm, symlink, writeFile, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selectSlot } from "./frame-plan.js";
import type { VideoMetadata } from "./metadata.js";
import { box, children, dataEnd, isMp4Container, Mp4Unsupported, readMp4Index, readTrack, samplePts, unsupported as no, type Box, type SampleTable } from "./mp4-index.js";
import { isProcessAlive } from "../pid.js";

/** An input that decodes only the frames the analysis needs, and what it promises. */
export interface SparseInput {
  /** ffmpeg input URL: the original bytes with the rewritten index. */
  url: string;
  /** pts (in 1/timescale units) of the frames the select filter will pick, in order. */
  selectedPts: readonly number[];
  /** Their frame numbers in the video (presentation order among the frames ffmpeg outputs), in order. */
  selectedSourceIndex: readonly number[];
  /** The video track's time scale: the stream time base is 1/timescale. */
  timescale: number;
  /** Frames in the stream, and frames ffmpeg will decode. */
  frames: number;
  decoded: number;
  /** Per selected frame, the frames decoded to make it (those of the plan up to it in decode order). */
  decodedThrough: readonly number[];
  /** Removes the temporary index files (after ffmpeg has exited). */
  dispose(): Promise<void>;
}

/** planSparseInput's answer: the input to give ffmpeg, or why the video is decoded in full. */
export type SparsePlan = { input: SparseInput } | { input?: undefined; reason: string };

/** Sparse decoding pays only when it leaves out at least this share of the frames. */
const MIN_SKIPPED_SHARE = 0.1;
/** The sample table boxes the rewrite knows (any other makes the file decode in full). */
const STBL_BOXES = new Set(["stsd", "stts", "ctts", "cslg", "stss", "stsc", "stsz", "stco", "co64", "sdtp", "sbgp", "sgpd", "stps", "subs"]);

/** A full box's version+flags word followed by a table of 32-bit big-endian words. */
function table(version: number, header: number[], rows: ArrayLike<number>, columns: number, signed = false): Buffer {
  const b = Buffer.alloc(4 + 4 * (header.length + rows.length));
  b.writeUInt32BE(version << 24, 0);
  header.forEach((h, i) => b.writeUInt32BE(h, 4 + 4 * i));
  for (let i = 0, p = 4 + 4 * header.length; i < rows.length; i++, p += 4) {
    // Odd columns of ctts are signed offsets; every other value is unsigned.
    if (signed && i % columns === 1) b.writeInt32BE(rows[i]!, p);
    else b.writeUInt32BE(rows[i]!, p);
  }
  return b;
}

/** Run-length pairs (count, value) of a sequence. */
function runs(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (out.length && out[out.length - 1] === v) out[out.length - 2]!++;
    else out.push(1, v);
  }
  return out;
}

/** What a NAL unit says of its picture: "ref" (or unknown: kept to be safe), "nonref", or "none" (no slice). */
type NalKind = "ref" | "nonref" | "none";
interface NalRules {
  headerBytes: number;
  kind(b: Buffer, at: number): NalKind;
}

/** H.264: slices (types 1-5) carry nal_ref_idc; SVC/MVC extension units (14, 20, 21) are kept. */
const H264_RULES: NalRules = {
  headerBytes: 1,
  kind(b, at) {
    const h = b[at]!;
    const type = h & 31;
    if (type >= 1 && type <= 5) return h & 0x60 ? "ref" : "nonref";
    return type === 14 || type === 20 || type === 21 ? "ref" : "none";
  },
};

/**
 * HEVC: a sub-layer non-reference picture (VCL types 0, 2, ..., 14: TRAIL_N, TSA_N, STSA_N, RADL_N,
 * RASL_N and the reserved _N types) is never used to predict pictures of its own temporal sub-layer, so at
 * the highest one (`maxTid`) it predicts none at all. Other layers than the base one are kept.
 */
function hevcRules(maxTid: number): NalRules {
  return {
    headerBytes: 2,
    kind(b, at) {
      const type = (b[at]! >> 1) & 63;
      if (type > 31) return "none";
      const layer = ((b[at]! & 1) << 5) | (b[at + 1]! >> 3);
      const tid = (b[at + 1]! & 7) - 1;
      return type < 16 && type % 2 === 0 && layer === 0 && tid === maxTid ? "nonref" : "ref";
    },
  };
}

/**
 * Which samples are reference pictures: any slice that is one, or anything this walk cannot classify
 * (kept, to be safe). Reads a few bytes at each sample's start and at each further NAL: synchronous reads
 * of the page cache, in batches with the event loop let run between them.
 */
async function referenceSamples(fd: number, t: SampleTable, rules: NalRules): Promise<Uint8Array> {
  const count = t.sizes.length;
  const ref = new Uint8Array(count);
  const L = t.nalLengthSize!;
  const need = L + rules.headerBytes;
  const win = Buffer.alloc(512);
  const BATCH = 512;
  for (let i = 0; i < count; i++) {
    if (i % BATCH === BATCH - 1) await new Promise((r) => setImmediate(r));
    const base = t.offsets[i]!;
    const size = t.sizes[i]!;
    let pos = 0;
    let nonref = false;
    let isRef = false;
    let winStart = 0;
    let winLen = 0;
    for (let hops = 0; pos + need <= size && !isRef; hops++) {
      if (hops === 64) {
        isRef = true;
        break;
      }
      if (pos < winStart || pos + need > winStart + winLen) {
        winStart = pos;
        winLen = readSync(fd, win, 0, Math.min(win.length, size - pos), base + pos);
        if (winLen < need) {
          isRef = true;
          break;
        }
      }
      const w = pos - winStart;
      const len = L === 4 ? win.readUInt32BE(w) : L === 2 ? win.readUInt16BE(w) : win[w]!;
      const kind = rules.kind(win, w + L);
      if (kind === "ref") isRef = true;
      else if (kind === "nonref") nonref = true;
      if (len === 0) break;
      pos += L + len;
    }
    ref[i] = isRef || !nonref ? 1 : 0;
  }
  return ref;
}

/**
 * The frames the select filter picks (in pts order), from each sample's pts; `out` says which samples
 * ffmpeg outputs at all (an edit list's start drops the ones before it).
 */
function pickedSamples(pts: Float64Array, out: (i: number) => boolean, timescale: number, fps: number, origin: number): { picked: number[]; rank: number[] } {
  const order = [...pts.keys()].filter(out).sort((a, b) => pts[a]! - pts[b]! || a - b);
  const tb = 1 / timescale;
  const picked: number[] = [];
  const rank: number[] = [];
  let prevSlot = Number.NaN;
  order.forEach((i, r) => {
    const slot = selectSlot(pts[i]! * tb, fps, origin);
    if (Number.isNaN(prevSlot) || slot >= prevSlot + 1) {
      picked.push(i);
      rank.push(r);
      prevSlot = slot;
    }
  });
  return { picked, rank };
}

/** The rewritten sample table listing only `keep` (sample numbers in decode order). */
function thinnedStbl(b: Buffer, t: SampleTable, keep: number[]): Buffer {
  const n = keep.length;
  const durations = new Uint32Array(n);
  for (let k = 0; k < n; k++) durations[k] = (k + 1 < n ? t.dts[keep[k + 1]!]! : t.total) - t.dts[keep[k]!]!;
  const parts: Buffer[] = [];
  for (const c of children(b, t.stbl.body, t.stbl.end)) {
    switch (c.type) {
      case "stsd":
      case "cslg":
        parts.push(b.subarray(c.start, c.end));
        break;
      case "stts": {
        const r = runs(durations);
        parts.push(box("stts", table(0, [r.length / 2], r, 2)));
        break;
      }
      case "ctts": {
        const r = runs(keep.map((i) => t.ctts![i]!));
        parts.push(box("ctts", table(t.cttsVersion, [r.length / 2], r, 2, true)));
        break;
      }
      case "stss": {
        const isSync = new Set(t.sync);
        const kept = keep.flatMap((i, k) => (isSync.has(i + 1) ? [k + 1] : []));
        parts.push(box("stss", table(0, [kept.length], kept, 1)));
        break;
      }
      case "stsc":
        // One sample per chunk: the kept samples are no longer contiguous.
        parts.push(box("stsc", table(0, [1], [1, 1, 1], 3)));
        break;
      case "stsz":
        parts.push(box("stsz", table(0, [0, n], keep.map((i) => t.sizes[i]!), 1)));
        break;
      case "stco":
      case "co64": {
        const big = keep.some((i) => t.offsets[i]! > 0xffffffff);
        if (!big) parts.push(box("stco", table(0, [n], keep.map((i) => t.offsets[i]!), 1)));
        else {
          const p = Buffer.alloc(8 + 8 * n);
          p.writeUInt32BE(n, 4);
          keep.forEach((i, k) => p.writeBigUInt64BE(BigInt(t.offsets[i]!), 8 + 8 * k));
          parts.push(box("co64", p));
        }
        break;
      }
      // sdtp, sbgp, sgpd, stps, subs describe samples by number; without them ffmpeg decodes the same.
    }
  }
  return box("stbl", ...parts);
}

/** `moov` with the boxes on `path` (moov's trak, mdia, minf) rebuilt around a new stbl. */
function rebuiltMoov(b: Buffer, moov: Box, path: Box[], stbl: Box, newStbl: Buffer): Buffer {
  const rebuild = (parent: Box, depth: number): Buffer => {
    const parts: Buffer[] = [];
    const next = path[depth];
    for (const c of children(b, parent.body, parent.end)) {
      if (next && c.start === next.start) parts.push(rebuild(c, depth + 1));
      else if (!next && c.start === stbl.start) parts.push(newStbl);
      else parts.push(b.subarray(c.start, c.end));
    }
    return box(parent.type, ...parts);
  };
  return rebuild(moov, 0);
}

/**
 * Plans a sparse decode of `meta`'s video for analysis at `fps` (see the file comment). Returns the input
 * to give ffmpeg, or the reason the video is decoded in full: not H.264 or HEVC in MP4/MOV, a fragmented or
 * unusual index, an edit list other than a single plain edit, or too few frames to leave out.
 */
export async function planSparseInput(meta: VideoMetadata, fps: number): Promise<SparsePlan> {
  if (meta.codec !== "h264" && meta.codec !== "hevc") return { reason: `codec ${meta.codec}` };
  if (!isMp4Container(meta.container)) return { reason: `container ${meta.container}` };
  let fh: FileHandle | undefined;
  let dir: string | undefined;
  try {
    fh = await open(meta.path, "r");
    const idx = await readMp4Index(fh);
    const t = readTrack(idx, meta.streamIndex);
    const hevc = meta.codec === "hevc";
    if (!(hevc ? ["hvc1", "hev1"] : ["avc1", "avc3"]).includes(t.entryType)) no(`sample entry ${t.entryType}`);
    if (t.entries !== 1) no("more than one sample description");
    if (t.nalLengthSize === undefined || t.nalLengthSize === 3) no(`no usable ${hevc ? "hvcC" : "avcC"} box`);
    if (hevc && !t.temporalLayers) no("hvcC does not state the temporal layers");
    const rules = hevc ? hevcRules(t.temporalLayers! - 1) : H264_RULES;
    if (t.externalData) no("data in another file");
    if (idx.top.some((x) => x.end > idx.size) || dataEnd(t) > idx.size) no("the file is cut short");
    if (t.edits.length > 1) no(`edit list with ${t.edits.length} entries`);
    const edit = t.edits[0];
    if (edit && (edit.mediaTime < 0 || edit.rate !== 1)) no("an empty edit or one not at normal rate");
    for (const c of children(idx.buf, t.stbl.body, t.stbl.end)) if (!STBL_BOXES.has(c.type)) no(`sample table has a ${c.type} box`);
    const count = t.sizes.length;
    if (count < 2) no("fewer than two frames");
    const pts = samplePts(t);
    // With an edit list ffmpeg outputs no frame before the edit's start; without one, every frame.
    const output = (i: number) => !edit || pts[i]! >= 0;
    const { picked, rank } = pickedSamples(pts, output, t.timescale, fps, meta.containerStartTime);

    const ref = await referenceSamples(fh.fd, t, rules);
    const needed = new Uint8Array(ref);
    for (const i of picked) needed[i] = 1;
    const keep: number[] = [];
    for (let i = 0; i < count; i++) if (needed[i]) keep.push(i);
    if (count - keep.length < MIN_SKIPPED_SHARE * count) no(`only ${count - keep.length} of ${count} frames could be left out`);

    const upTo = new Int32Array(count);
    for (let i = 0, n = 0; i < count; i++) upTo[i] = n += needed[i] ? 1 : 0;
    const { buf: b, moov, moovAt, size } = idx;
    const newMoov = rebuiltMoov(b, moov, t.path, t.stbl, thinnedStbl(b, t, keep));
    // The old moov stays in place as a `free` box (same size, so no offset moves); the new one follows the file.
    const free = Buffer.alloc(moovAt.body - moovAt.start);
    if (free.length === 16) {
      free.writeUInt32BE(1, 0);
      free.writeBigUInt64BE(BigInt(moovAt.end - moovAt.start), 8);
    } else free.writeUInt32BE(moovAt.end - moovAt.start, 0);
    free.write("free", 4, "latin1");

    await removeStaleSparseFolders();
    dir = await mkdtemp(join(tmpdir(), `vasdk-sparse-${process.pid}-`));
    // ffmpeg's concat protocol splits its list at "|", so the file is reached through a link with a plain name.
    if (/[|,]/.test(dir)) no("temporary folder name has | or ,");
    const video = join(dir, "video");
    await symlink(meta.path, video);
    await writeFile(join(dir, "free"), free);
    await writeFile(join(dir, "moov"), newMoov);
    const sub = (a: number, z: number) => `subfile,,start,${a},end,${z},,:file:${video}`;
    const parts = [
      ...(moovAt.start > 0 ? [sub(0, moovAt.start)] : []),
      `file:${join(dir, "free")}`,
      sub(moovAt.body, moovAt.end),
      ...(moovAt.end < size ? [sub(moovAt.end, size)] : []),
      `file:${join(dir, "moov")}`,
    ];
    const tmp = dir;
    dir = undefined;
    return {
      input: {
        url: `concat:${parts.join("|")}`,
        selectedPts: picked.map((i) => pts[i]!),
        selectedSourceIndex: rank,
        timescale: t.timescale,
        frames: count,
        decoded: keep.length,
        decodedThrough: picked.map((i) => upTo[i]!),
        dispose: () => rm(tmp, { recursive: true, force: true }),
      },
    };
  } catch (e) {
    if (e instanceof Mp4Unsupported) return { reason: e.message };
    // Unreadable file or temporary folder: the full decode reports what is wrong with the file itself.
    return { reason: `cannot prepare: ${(e as Error).message}` };
  } finally {
    await fh?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Removes the index folders (`vasdk-sparse-<pid>-*`) of processes that were killed before they could. */
async function removeStaleSparseFolders(): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const pid = /^vasdk-sparse-(\d+)-/.exec(n)?.[1];
    if (pid && Number(pid) !== process.pid && !isProcessAlive(Number(pid))) await rm(join(tmpdir(), n), { recursive: true, force: true }).catch(() => undefined);
  }
}

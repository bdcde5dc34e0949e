/**
 * An MP4/MOV file's index read in-process: the top-level boxes, the `moov` box, and one track's sample
 * table (where each frame's bytes are, and its decode and composition times). Used to check that a file's
 * data is all there (probeVideo), to plan sparse decoding (sparse.ts) and to know every frame's time
 * (render at the source rate), without starting ffprobe.
 * Box layout: ISO/IEC 14496-12.
 */
import { open, type FileHandle } from "node:fs/promises";

/** True for ffprobe's format names of the MP4/MOV family ("mov,mp4,m4a,3gp,3g2,mj2"). */
export function isMp4Container(container: string): boolean {
  return /\b(mov|mp4)\b/.test(container);
}

/** The file is not one this reader takes on (fragmented, malformed, an unusual layout): the reason. */
export class Mp4Unsupported extends Error {}
export const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason);
};

export interface Box {
  type: string;
  /** Offsets in the buffer (or file): the box's first byte, its payload's first byte, and its end. */
  start: number;
  body: number;
  end: number;
}

export function* children(b: Buffer, start: number, end: number): Generator<Box> {
  let p = start;
  while (p < end) {
    if (p + 8 > end) unsupported("malformed box");
    let size = b.readUInt32BE(p);
    const type = b.toString("latin1", p + 4, p + 8);
    let header = 8;
    if (size === 1) {
      if (p + 16 > end) unsupported("malformed box");
      size = Number(b.readBigUInt64BE(p + 8));
      header = 16;
    } else if (size === 0) size = end - p;
    if (size < header || p + size > end) unsupported(`malformed ${type} box`);
    yield { type, start: p, body: p + header, end: p + size };
    p += size;
  }
}

export function only(b: Buffer, parent: Box, type: string, required: true): Box;
export function only(b: Buffer, parent: Box, type: string, required?: boolean): Box | undefined;
export function only(b: Buffer, parent: Box, type: string, required = false): Box | undefined {
  let found: Box | undefined;
  for (const c of children(b, parent.body, parent.end))
    if (c.type === type) {
      if (found) unsupported(`two ${type} boxes`);
      found = c;
    }
  if (!found && required) unsupported(`no ${type} box`);
  return found;
}

/** A box built from its type and payload parts (8-byte header: the boxes built here are far below 4 GiB). */
export function box(type: string, ...parts: Buffer[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + parts.reduce((n, p) => n + p.length, 0), 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, ...parts]);
}

export interface Mp4Index {
  /** File size in bytes. */
  size: number;
  /** Top-level boxes (file offsets). A last box may end past `size` when the file is cut short. */
  top: Box[];
  /** The moov box in the file, and its bytes with `moov` giving its offsets in them. */
  moovAt: Box;
  buf: Buffer;
  moov: Box;
}

/** Largest `moov` read into memory (a 2-hour 60 fps video's index is a few MiB). */
const MAX_MOOV_BYTES = 64 << 20;

/** Reads the top-level boxes and the one `moov` (not fragmented: no `moof`/`mvex`). */
export async function readMp4Index(fh: FileHandle): Promise<Mp4Index> {
  const size = (await fh.stat()).size;
  const top: Box[] = [];
  const h = Buffer.alloc(16);
  for (let p = 0; p < size; ) {
    const { bytesRead } = await fh.read(h, 0, 16, p);
    if (bytesRead < 8) unsupported("malformed file");
    let len = h.readUInt32BE(0);
    let header = 8;
    if (len === 1) {
      if (bytesRead < 16) unsupported("malformed file");
      len = Number(h.readBigUInt64BE(8));
      header = 16;
    } else if (len === 0) len = size - p;
    if (len < header) unsupported("malformed file");
    top.push({ type: h.toString("latin1", 4, 8), start: p, body: p + header, end: p + len });
    p += len;
    if (top.length > 10000) unsupported("too many top-level boxes");
  }
  const moovs = top.filter((x) => x.type === "moov");
  if (moovs.length !== 1) unsupported(`${moovs.length} moov boxes`);
  if (top.some((x) => x.type === "moof")) unsupported("fragmented MP4");
  const moovAt = moovs[0]!;
  if (moovAt.end > size) unsupported("the moov box is cut short");
  if (moovAt.end - moovAt.start > MAX_MOOV_BYTES) unsupported("index larger than 64 MiB");
  const buf = Buffer.alloc(moovAt.end - moovAt.start);
  await fh.read(buf, 0, buf.length, moovAt.start);
  return { size, top, moovAt, buf, moov: { type: "moov", start: 0, body: moovAt.body - moovAt.start, end: buf.length } };
}

export interface Edit {
  /** The segment's length in the movie's time scale (SampleTable.movieTimescale). */
  duration: number;
  /** -1 for an empty edit. */
  mediaTime: number;
  rate: number;
}

export interface SampleTable {
  timescale: number;
  /** The movie's time scale (mvhd), in which the edits' durations are. */
  movieTimescale: number;
  /** The track's edit list (empty without one). */
  edits: Edit[];
  /** The sample entry's type ("avc1", "hvc1", ...) and the number of sample entries. */
  entryType: string;
  entries: number;
  /** H.264/HEVC: the NAL units' length prefix size (avcC/hvcC), and HEVC's temporal layers (0: not stated). */
  nalLengthSize: number | undefined;
  temporalLayers: number | undefined;
  /** True when a data reference points outside the file. */
  externalData: boolean;
  /** Byte offset and size of each sample, in decode order. */
  offsets: Float64Array;
  sizes: Uint32Array;
  /** Decode time of each sample (sum of the stts durations before it). */
  dts: Float64Array;
  /** Composition offsets (ctts; read as signed, as ffmpeg does whatever the version), or undefined. */
  ctts: Int32Array | undefined;
  cttsVersion: number;
  /** 1-based sync sample numbers, or undefined (every sample is a sync sample). */
  sync: Uint32Array | undefined;
  /** The media's total duration (sum of stts). */
  total: number;
  /** The stbl box and the boxes from moov down to it (trak, mdia, minf), for rebuilding. */
  stbl: Box;
  path: Box[];
}

function u32s(b: Buffer, at: number, n: number, end: number): Uint32Array {
  if (at + 4 * n > end) unsupported("short table");
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = b.readUInt32BE(at + 4 * i);
  return out;
}

/** Reads the sample table of the `index`-th track (ffmpeg's stream index for MP4/MOV), which must be video. */
export function readTrack(idx: Mp4Index, index: number): SampleTable {
  const { buf: b, moov } = idx;
  const top = [...children(b, moov.body, moov.end)];
  if (top.some((c) => c.type === "mvex")) unsupported("fragmented MP4");
  const trak = top.filter((c) => c.type === "trak")[index] ?? unsupported("video track not found in the index");
  const mdia = only(b, trak, "mdia", true);
  const hdlr = only(b, mdia, "hdlr", true);
  if (b.toString("latin1", hdlr.body + 8, hdlr.body + 12) !== "vide") unsupported("stream is not the video track");
  const mdhd = only(b, mdia, "mdhd", true);
  const timescale = b.readUInt32BE(mdhd.body + (b[mdhd.body] === 1 ? 20 : 12));
  if (!timescale) unsupported("zero time scale");
  // The edits' durations are in the movie's time scale (0 without an mvhd: outputPts then declines).
  const mvhd = top.find((c) => c.type === "mvhd");
  const movieTimescale = mvhd ? b.readUInt32BE(mvhd.body + (b[mvhd.body] === 1 ? 20 : 12)) : 0;

  const edits: Edit[] = [];
  const edts = only(b, trak, "edts");
  const elst = edts && only(b, edts, "elst");
  if (elst) {
    const v = b[elst.body]!;
    const n = b.readUInt32BE(elst.body + 4);
    const row = v === 1 ? 20 : 12;
    if (elst.body + 8 + n * row > elst.end) unsupported("short elst box");
    for (let e = 0; e < n; e++) {
      const at = elst.body + 8 + e * row;
      edits.push({
        duration: v === 1 ? Number(b.readBigUInt64BE(at)) : b.readUInt32BE(at),
        mediaTime: v === 1 ? Number(b.readBigInt64BE(at + 8)) : b.readInt32BE(at + 4),
        rate: b.readInt16BE(at + (v === 1 ? 16 : 8)),
      });
    }
  }

  const minf = only(b, mdia, "minf", true);
  const dinf = only(b, minf, "dinf");
  const dref = dinf && only(b, dinf, "dref");
  let externalData = false;
  // A data reference without the "self-contained" flag (1) names another file.
  if (dref) for (const ref of children(b, dref.body + 8, dref.end)) if (!(b.readUInt32BE(ref.body) & 1)) externalData = true;
  const stbl = only(b, minf, "stbl", true);

  const stsd = only(b, stbl, "stsd", true);
  const entries = b.readUInt32BE(stsd.body + 4);
  const entry = children(b, stsd.body + 8, stsd.end).next().value ?? unsupported("empty sample description");
  let nalLengthSize: number | undefined;
  let temporalLayers: number | undefined;
  if (["avc1", "avc3", "hvc1", "hev1"].includes(entry.type)) {
    // A visual sample entry's fields take 78 bytes before its child boxes.
    const config = [...children(b, entry.body + 78, entry.end)].find((c) => c.type === "avcC" || c.type === "hvcC");
    if (config?.type === "avcC" && config.end - config.body > 4) nalLengthSize = (b[config.body + 4]! & 3) + 1;
    if (config?.type === "hvcC" && config.end - config.body > 21) {
      // Byte 21: constantFrameRate (2 bits), numTemporalLayers (3), temporalIdNested (1), lengthSizeMinusOne (2).
      nalLengthSize = (b[config.body + 21]! & 3) + 1;
      temporalLayers = (b[config.body + 21]! >> 3) & 7;
    }
  }

  const stsz = only(b, stbl, "stsz", true);
  const fixed = b.readUInt32BE(stsz.body + 4);
  const count = b.readUInt32BE(stsz.body + 8);
  const sizes = fixed ? new Uint32Array(count).fill(fixed) : u32s(b, stsz.body + 12, count, stsz.end);

  const dts = new Float64Array(count);
  const stts = only(b, stbl, "stts", true);
  const sttsRows = u32s(b, stts.body + 8, 2 * b.readUInt32BE(stts.body + 4), stts.end);
  let t = 0;
  let i = 0;
  for (let e = 0; e < sttsRows.length; e += 2)
    for (let k = 0; k < sttsRows[e]! && i < count; k++, i++) (dts[i] = t), (t += sttsRows[e + 1]!);
  if (i !== count) unsupported("stts and stsz disagree");

  let ctts: Int32Array | undefined;
  let cttsVersion = 0;
  const cttsBox = only(b, stbl, "ctts");
  if (cttsBox) {
    cttsVersion = b[cttsBox.body]!;
    const rows = u32s(b, cttsBox.body + 8, 2 * b.readUInt32BE(cttsBox.body + 4), cttsBox.end);
    ctts = new Int32Array(count);
    let j = 0;
    for (let e = 0; e < rows.length; e += 2) for (let k = 0; k < rows[e]! && j < count; k++, j++) ctts[j] = rows[e + 1]! | 0;
    if (j !== count) unsupported("ctts and stsz disagree");
  }

  const stssBox = only(b, stbl, "stss");
  const sync = stssBox ? u32s(b, stssBox.body + 8, b.readUInt32BE(stssBox.body + 4), stssBox.end) : undefined;

  const stco = only(b, stbl, "stco");
  const co64 = only(b, stbl, "co64");
  if (stco && co64) unsupported("both stco and co64");
  const chunkBox = stco ?? co64 ?? unsupported("no chunk offsets");
  const chunks = b.readUInt32BE(chunkBox.body + 4);
  if (chunkBox.body + 8 + chunks * (co64 ? 8 : 4) > chunkBox.end) unsupported("short chunk offset box");
  const chunkOffset = (c: number) => (co64 ? Number(b.readBigUInt64BE(co64.body + 8 + 8 * c)) : b.readUInt32BE(chunkBox.body + 8 + 4 * c));
  const stsc = only(b, stbl, "stsc", true);
  const stscRows = u32s(b, stsc.body + 8, 3 * b.readUInt32BE(stsc.body + 4), stsc.end);
  const offsets = new Float64Array(count);
  let s = 0;
  for (let e = 0; e < stscRows.length; e += 3) {
    const last = e + 3 < stscRows.length ? stscRows[e + 3]! - 1 : chunks;
    for (let c = stscRows[e]! - 1; c < last && s < count; c++) {
      let off = chunkOffset(c);
      for (let k = 0; k < stscRows[e + 1]! && s < count; k++, s++) (offsets[s] = off), (off += sizes[s]!);
    }
  }
  if (s !== count) unsupported("stsc and stsz disagree");

  return { timescale, movieTimescale, edits, entryType: entry.type, entries, nalLengthSize, temporalLayers, externalData, offsets, sizes, dts, ctts, cttsVersion, sync, total: t, stbl, path: [trak, mdia, minf] };
}

/**
 * Each sample's presentation time in decode order, in the track's time scale: its decode time plus its
 * composition offset, less the (first) edit's start. With an edit, ffmpeg outputs no frame below 0.
 */
export function samplePts(t: SampleTable): Float64Array {
  const shift = t.edits[0]?.mediaTime ?? 0;
  const pts = new Float64Array(t.sizes.length);
  for (let i = 0; i < pts.length; i++) pts[i] = t.dts[i]! + (t.ctts?.[i] ?? 0) - shift;
  return pts;
}

/**
 * The presentation times (pts, in the track's time scale) of the frames ffmpeg outputs for the track, in
 * order, from the index alone: each sample's decode time plus its composition offset, less the edit's
 * start, those before the edit's start left out (ffmpeg decodes and drops them). Undefined where the index
 * asks for more than that: several edits, an empty or slowed edit, or one that ends before the last frame.
 */
export function outputPts(t: SampleTable): Float64Array | undefined {
  if (t.edits.length > 1) return undefined;
  const edit = t.edits[0];
  if (edit && (edit.mediaTime < 0 || edit.rate !== 1 || !(t.movieTimescale > 0))) return undefined;
  const all = samplePts(t);
  const out: number[] = [];
  let firstDts = Infinity;
  for (let i = 0; i < all.length; i++) {
    if (edit && all[i]! < 0) continue;
    out.push(all[i]!);
    if (firstDts === Infinity) firstDts = t.dts[i]! - (edit?.mediaTime ?? 0);
  }
  const pts = Float64Array.from(out).sort();
  // ffmpeg's mov demuxer starts an edited track at the later of its first kept frame's decode time and its
  // earliest presentation time: that is the edit's start only when a frame is presented right there (the
  // usual B-frame delay). An edit starting at 0 or between frames shifts the times otherwise: not guessed.
  if (edit && pts.length && (pts[0] !== 0 || firstDts > 0)) return undefined;
  // An edit shorter than the media cuts its end (a duration of 0 is taken as that too: not guessed).
  if (edit && pts.length && (edit.duration * t.timescale) / t.movieTimescale <= pts[pts.length - 1]!) return undefined;
  return pts;
}

/**
 * outputPts of a file's track `streamIndex`, in seconds: the times of the frames ffmpeg outputs, read from
 * the MP4/MOV index without ffprobe (which reads every packet of the file); undefined where the file or
 * its index is not one outputPts answers for.
 */
export async function mp4FrameTimes(path: string, streamIndex: number): Promise<Float64Array | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, "r");
    const t = readTrack(await readMp4Index(fh), streamIndex);
    const pts = outputPts(t);
    return pts?.map((p) => p / t.timescale);
  } catch {
    // Not an index this reads (or not readable): ffprobe answers, or says what is wrong.
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Where the track's data ends: the end of its last-placed sample (0 without samples). */
export function dataEnd(t: SampleTable): number {
  let end = 0;
  for (let i = 0; i < t.sizes.length; i++) end = Math.max(end, t.offsets[i]! + t.sizes[i]!);
  return end;
}

import { createHash } from "node:crypto";
import { open, readFile, rm, type FileHandle } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { ioError, writeFileAtomic } from "../artifacts/atomic.js";
import type { NpzState } from "../artifacts/npz.js";
import { VideoAnalysisError } from "../errors.js";
import type { Profile } from "../profiles/index.js";
import type { OutageRecord } from "../triton/outage.js";
import type { ArtifactSink } from "./artifact.js";

/**
 * A run that commits as it goes. Every output.commit_interval_s seconds (after a whole frame is written)
 * the run makes durable, in this order:
 * 1. each artifact's temporary file (`<artifact>.partial`) up to what was written (NpzWriter.checkpoint:
 *    its length, the open array's byte count and CRC-32 state);
 * 2. the rows held in memory until an artifact is finished (frame indices, timestamps, detections...),
 *    appended since the last commit to `.video-analysis.journal.rows`;
 * 3. the journal `.video-analysis.journal.json`, written atomically: frames committed, each file's
 *    committed length, the tracker's state after the last committed frame, and the fingerprints of the
 *    video and the profile.
 * A process killed anywhere leaves the last journal valid: the files are only ever longer than it says,
 * and a resume cuts them back. A complete run removes the journal after its manifest is written.
 */

export const JOURNAL_FILE = ".video-analysis.journal.json";
export const JOURNAL_ROWS = ".video-analysis.journal.rows";
export const JOURNAL_VERSION = 2;

/** Where an artifact is written until the run is finished (a stable name: a resume opens it again). */
export function partialPath(artifact: string): string {
  return `${artifact}.partial`;
}

/** Which video a run analysed: its size and a hash of its first and last MiB (no full read of an hour of video). */
export interface VideoFingerprint {
  path: string;
  bytes: number;
  sha256_head_tail: string;
}

export async function fingerprintVideo(path: string): Promise<VideoFingerprint> {
  const abs = resolve(path);
  const h = await open(abs, "r");
  try {
    const { size } = await h.stat();
    const hash = createHash("sha256");
    const piece = async (at: number, n: number) => {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await h.read(buf, 0, n, at);
      hash.update(buf.subarray(0, bytesRead));
    };
    const MiB = 1 << 20;
    await piece(0, Math.min(MiB, size));
    if (size > MiB) await piece(Math.max(MiB, size - MiB), Math.min(MiB, size - MiB));
    return { path: abs, bytes: size, sha256_head_tail: hash.digest("hex") };
  } finally {
    await h.close();
  }
}

/**
 * The parts of a profile that decide a run's results: analysis, routing, models, components, float16,
 * the backend kind. Where the server is, concurrency, budgets and output folders may change across a resume.
 */
export function resultProfile(p: Profile): Record<string, unknown> {
  return {
    backend: p.backend.triton ? "triton" : "embedded",
    analysis: p.analysis,
    routing: p.routing,
    model_names: p.model_names,
    components: p.components,
    output: { float16: p.output.float16 },
  };
}

/** Paths where two JSON values differ ("components.scene.top_k: 3 -> 5"), the first `max` of them. */
export function jsonDiff(a: unknown, b: unknown, max = 5, path = ""): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, p: string) => {
    if (out.length >= max) return;
    const isObj = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (isObj(x) && isObj(y)) {
      const keys = [...new Set([...Object.keys(x as object), ...Object.keys(y as object)])].sort();
      for (const k of keys) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], p ? `${p}.${k}` : k);
      return;
    }
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) out.push(`${p || "(profile)"}: ${sx ?? "absent"} -> ${sy ?? "absent"}`);
  };
  walk(a, b, path);
  return out;
}

/** One stop and resume of a run, as the manifest lists it. */
export interface Interruption {
  /** Frames committed when the run stopped (it went on from this frame). */
  frames_committed: number;
  /** Why it stopped, when the run could say (a signal, a spent outage budget); null after a kill. */
  reason: string | null;
  stopped_at: string | null;
  resumed_at: string;
}

export interface JournalArtifact {
  /** The temporary file, relative to the run folder. */
  partial: string;
  npz: NpzState;
  /** Rows committed per column (ArtifactSink.journal.columns). */
  rows: number[];
}

/** .video-analysis.journal.json. */
export interface JournalData {
  journal_version: number;
  video: VideoFingerprint;
  profile: Record<string, unknown>;
  profile_source: string;
  /** Slot -> model routed: a resume must route the same. */
  models: Record<string, string>;
  overwrite: boolean;
  max_frames: number | null;
  frames: number;
  first_timestamp: number | null;
  last_timestamp: number | null;
  /** Final artifact path (relative) -> where its file stands. */
  artifacts: Record<string, JournalArtifact>;
  rows_bytes: number;
  /** Component name -> the state its inOrder() carries (Analyzer.state(); the tracker's), after the last committed frame. */
  states: Record<string, unknown>;
  outages: OutageRecord[];
  interruptions: Interruption[];
  committed_at: string;
  /** Set when the run stopped and could say why. */
  stopped?: { at: string; reason: string };
}

export async function readJournal(dir: string): Promise<JournalData | undefined> {
  const path = join(dir, JOURNAL_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw ioError(path, "read", e);
  }
  try {
    const j = JSON.parse(text) as JournalData;
    if (j.journal_version !== JOURNAL_VERSION) throw new Error(`journal_version ${String(j.journal_version)}, this SDK writes ${JOURNAL_VERSION}`);
    return j;
  } catch (e) {
    throw new VideoAnalysisError("DATA_LOSS", `${path} cannot be read (${(e as Error).message}); the interrupted run cannot be resumed: start it again with --overwrite`, { details: { file: path } });
  }
}

/** Deletes a journal and its rows file (the run completed, or is started over). */
export async function removeJournal(dir: string): Promise<void> {
  await rm(join(dir, JOURNAL_FILE), { force: true });
  await rm(join(dir, JOURNAL_ROWS), { force: true });
}

const REC_HEADER = 6; // u8 artifact, u8 column, u32 bytes

/** The commits of one run (new, or resumed from a journal). */
export class RunJournal {
  private rowsSize: number;
  private committed: Map<ArtifactSink, number[]> = new Map();

  private constructor(
    readonly dir: string,
    private data: JournalData,
    private readonly rows: FileHandle,
  ) {
    this.rowsSize = data.rows_bytes;
  }

  /** Frames committed so far. */
  get frames(): number {
    return this.data.frames;
  }

  get state(): Readonly<JournalData> {
    return this.data;
  }

  /** A new run's journal (written at its first commit). */
  static async create(dir: string, data: Omit<JournalData, "journal_version" | "frames" | "first_timestamp" | "last_timestamp" | "artifacts" | "rows_bytes" | "states" | "committed_at" | "interruptions">): Promise<RunJournal> {
    const path = join(dir, JOURNAL_ROWS);
    let h: FileHandle;
    try {
      h = await open(path, "w", 0o644);
    } catch (e) {
      throw ioError(path, "create", e);
    }
    return new RunJournal(dir, {
      journal_version: JOURNAL_VERSION, ...data, frames: 0, first_timestamp: null, last_timestamp: null,
      artifacts: {}, rows_bytes: 0, states: {}, committed_at: "", interruptions: [],
    }, h);
  }

  /**
   * The journal of an interrupted run, to go on with: its rows file cut back to the commit, and the rows
   * of each artifact's columns (artifact path -> column -> bytes).
   */
  static async resume(dir: string, data: JournalData): Promise<{ journal: RunJournal; rows: Map<string, Uint8Array[]> }> {
    const path = join(dir, JOURNAL_ROWS);
    let h: FileHandle;
    let buf: Buffer;
    try {
      h = await open(path, "r+");
      const st = await h.stat();
      if (st.size < data.rows_bytes) {
        await h.close();
        throw new VideoAnalysisError("DATA_LOSS", `${path} holds ${st.size} bytes, the journal committed ${data.rows_bytes}; the interrupted run cannot be resumed: start it again with --overwrite`, { details: { file: path } });
      }
      await h.truncate(data.rows_bytes);
      buf = Buffer.alloc(data.rows_bytes);
      for (let got = 0; got < buf.length; ) {
        const { bytesRead } = await h.read(buf, got, buf.length - got, got);
        if (bytesRead === 0) throw new Error(`ended at byte ${got}`);
        got += bytesRead;
      }
    } catch (e) {
      throw ioError(path, "reopen", e);
    }
    const names = Object.keys(data.artifacts);
    const rows = new Map<string, Uint8Array[][]>(names.map((n) => [n, data.artifacts[n]!.rows.map(() => [])]));
    for (let at = 0; at < buf.length; ) {
      const a = names[buf[at]!];
      const cols = a === undefined ? undefined : rows.get(a);
      const c = buf[at + 1]!;
      const n = buf.readUInt32LE(at + 2);
      if (!cols || c >= cols.length || at + REC_HEADER + n > buf.length) throw new VideoAnalysisError("DATA_LOSS", `${path} is damaged at byte ${at}; start the run again with --overwrite`, { details: { file: path } });
      cols[c]!.push(buf.subarray(at + REC_HEADER, at + REC_HEADER + n));
      at += REC_HEADER + n;
    }
    const joined = new Map([...rows].map(([n, cols]) => [n, cols.map((parts) => Buffer.concat(parts))]));
    return { journal: new RunJournal(dir, structuredClone(data), h), rows: joined };
  }

  /** The columns of `sink` hold `rows` committed rows each already (a resumed run). */
  adopt(sink: ArtifactSink, rows: number[]): void {
    this.committed.set(sink, [...rows]);
  }

  /** Records this resume in the journal's list of interruptions (written with the next commit). */
  resumed(): void {
    const s = this.data.stopped;
    this.data.interruptions.push({ frames_committed: this.data.frames, reason: s?.reason ?? null, stopped_at: s?.at ?? null, resumed_at: new Date().toISOString() });
    delete this.data.stopped;
  }

  /** Commits `frames` frames: every sink's file, the rows since the last commit, then the journal. */
  async commit(sinks: readonly ArtifactSink[], c: { frames: number; first: number | null; last: number | null; states: Record<string, unknown>; outages: OutageRecord[] }): Promise<void> {
    const artifacts: Record<string, JournalArtifact> = {};
    const records: Buffer[] = [];
    for (const [i, s] of sinks.entries()) {
      const { writer, columns } = s.journal;
      const npz = await writer.checkpoint();
      const before = this.committed.get(s) ?? columns.map(() => 0);
      const rows = columns.map((col) => col.rows);
      columns.forEach((col, k) => {
        const bytes = col.bytesFrom(before[k]!);
        if (bytes.byteLength === 0) return;
        const h = Buffer.alloc(REC_HEADER);
        h[0] = i;
        h[1] = k;
        h.writeUInt32LE(bytes.byteLength, 2);
        records.push(h, Buffer.from(bytes));
      });
      this.committed.set(s, rows);
      artifacts[rel(this.dir, s.path)] = { partial: rel(this.dir, writer.tempPath), npz, rows };
    }
    const path = join(this.dir, JOURNAL_ROWS);
    try {
      const data = Buffer.concat(records);
      let done = 0;
      while (done < data.length) done += (await this.rows.write(data, done, data.length - done, this.rowsSize + done)).bytesWritten;
      await this.rows.datasync();
      this.rowsSize += data.length;
    } catch (e) {
      throw ioError(path, "write", e);
    }
    Object.assign(this.data, {
      frames: c.frames, first_timestamp: c.first, last_timestamp: c.last, artifacts, rows_bytes: this.rowsSize,
      states: c.states, outages: c.outages, committed_at: new Date().toISOString(),
    });
    await this.write();
  }

  /** Notes why the run stopped (kept for --resume), leaving the commit as it is. */
  async stopped(reason: string): Promise<void> {
    if (this.data.frames === 0) return;
    this.data.stopped = { at: new Date().toISOString(), reason };
    await this.write().catch(() => undefined);
  }

  private async write(): Promise<void> {
    await writeFileAtomic(join(this.dir, JOURNAL_FILE), `${JSON.stringify(this.data)}\n`);
  }

  async close(): Promise<void> {
    await this.rows.close().catch(() => undefined);
  }
}

function rel(dir: string, path: string): string {
  return relative(dir, path).split(sep).join("/");
}


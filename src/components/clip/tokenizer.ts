/**
 * CLIP's byte-level BPE tokenizer (the one every OpenAI CLIP text model was trained with).
 *
 * Semantics, stage by stage (as openai/CLIP's simple_tokenizer.py and the Hugging Face CLIP fast
 * tokenizer do them):
 *  1. Clean-up: Unicode NFC, every whitespace run becomes one space, trimmed, lower-cased. There is no
 *     ftfy pass and no HTML unescaping (the Hugging Face tokenizer does neither; OpenAI's runs ftfy and
 *     `html.unescape` twice, which only matters for mojibake and `&amp;`-style entities).
 *  2. Pre-tokenisation with `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
 *     [^\s\p{L}\p{N}]+` (case-insensitive): letter runs, single digits, runs of other non-space symbols.
 *  3. Each piece's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode table), the
 *     last character gets the `</w>` end-of-word marker, and BPE merges are applied by rank.
 *  4. Ids come from the vocabulary: the 256 byte characters, the same 256 with `</w>`, the 48,894 merges
 *     joined, then `<|startoftext|>` (49406) and `<|endoftext|>` (49407): 49,408 entries.
 *
 * The merges are read at run time from `bpe_simple_vocab_16e6.txt.gz` (openai/CLIP, MIT): lines 1..48894
 * after its `#version` header line. The file is not shipped with the SDK; see `resolveClipBpePath`.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { VideoAnalysisError } from "../../errors.js";

/** The file name of CLIP's BPE merges, as openai/CLIP ships it. */
export const CLIP_BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz";
/** Environment variable naming the BPE file when the profile does not. */
export const CLIP_BPE_ENV = "CLIP_BPE_PATH";
/** Number of merges CLIP uses (49152 - 256 - 2). */
export const CLIP_NUM_MERGES = 48_894;
/** Vocabulary size: 512 byte symbols + merges + 2 special tokens. */
export const CLIP_VOCAB_SIZE = 49_408;
export const CLIP_SOT = 49_406;
export const CLIP_EOT = 49_407;
export const CLIP_CONTEXT_LENGTH = 77;

const SOT_TEXT = "<|startoftext|>";
const EOT_TEXT = "<|endoftext|>";
const END_OF_WORD = "</w>";
const gunzipAsync = promisify(gunzip);

/** Pre-tokenisation pattern (openai/CLIP's, with JavaScript's Unicode property escapes). */
const PIECE_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

/** Cached words before the cache is cleared (bounds memory for long-lived processes fed arbitrary text). */
const WORD_CACHE_LIMIT = 20_000;

/**
 * GPT-2's reversible byte -> character table: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order. Index = byte value. `BYTE_SYMBOL_ORDER` is the order in which these
 * characters open the vocabulary (the printable ones first, then the rest).
 */
function bytesToUnicode(): { table: string[]; order: number[] } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  for (const b of printable) table[b] = String.fromCharCode(b);
  const order = [...printable];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) {
      table[b] = String.fromCharCode(256 + n++);
      order.push(b);
    }
  }
  return { table, order };
}

const { table: BYTE_TO_CHAR, order: BYTE_ORDER } = bytesToUnicode();
const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Where the BPE file was looked for, first match wins. */
export interface ClipBpeLocation {
  /** An explicit path (the profile's setting). When given, it is the only candidate. */
  bpePath?: string | undefined;
}

/** The copy of openai/CLIP's BPE file shipped with the SDK (assets/clip; its MIT licence is in NOTICE). */
export const SHIPPED_CLIP_BPE_PATH = fileURLToPath(new URL(`../../../../assets/clip/${CLIP_BPE_FILENAME}`, import.meta.url));

/**
 * The path of CLIP's BPE file: the explicit path if one is given (the profile's setting; no fallback
 * from a path the user named), else `$CLIP_BPE_PATH`, else the copy shipped with the SDK.
 * Throws an IO_ERROR naming every place it looked, and what to do, when none exists.
 */
export function resolveClipBpePath(location: ClipBpeLocation = {}): string {
  if (location.bpePath) return resolve(location.bpePath);
  const candidates: string[] = [];
  const fromEnv = process.env[CLIP_BPE_ENV];
  if (fromEnv) candidates.push(resolve(fromEnv));
  candidates.push(SHIPPED_CLIP_BPE_PATH);
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  throw missingBpeError(candidates);
}

function missingBpeError(paths: string[], cause?: unknown): VideoAnalysisError {
  const where = paths.length === 1 ? paths[0] : `any of: ${paths.join(", ")}`;
  return new VideoAnalysisError(
    "IO_ERROR",
    `CLIP's BPE vocabulary file was not found at ${where}. The CLIP text prompts need ` +
      `${CLIP_BPE_FILENAME}: download clip/${CLIP_BPE_FILENAME} from https://github.com/openai/CLIP (MIT license) ` +
      `and name its path in the profile (components.core_clip.bpe_path) or in the ${CLIP_BPE_ENV} environment variable.`,
    { details: { file: paths.length === 1 ? paths[0] : paths }, cause },
  );
}

/** Options of `ClipTokenizer.tokenize`. */
export interface TokenizeOptions {
  /**
   * Id used after EOT. 0 (the default) is what openai/CLIP's `clip.tokenize` writes; Hugging Face's
   * CLIP tokenizers pad with EOT (49407). Both give the same text embedding: CLIP's text transformer is
   * causal, so the EOT row never sees the padding, and `eotIndex` takes the first EOT.
   */
  padId?: number;
  /**
   * Longer texts are cut to `contextLength` ids with EOT kept as the last one (the default, as
   * `clip.tokenize(..., truncate=True)` and Hugging Face's truncation do). `false` throws instead.
   */
  truncate?: boolean;
}

/**
 * The merge table in typed arrays (open addressing on the pair of ids): 49k merges kept as a Map of
 * strings were 14 MB of heap that every garbage collection of a video run had to mark.
 */
class MergeTable {
  private readonly keys: Int32Array;
  private readonly ranks: Int32Array;
  private readonly shift: number;

  constructor(capacity: number) {
    const bits = Math.max(4, Math.ceil(Math.log2(capacity * 2)));
    this.shift = 32 - bits;
    this.keys = new Int32Array(1 << bits).fill(-1);
    this.ranks = new Int32Array(1 << bits);
  }

  private slot(key: number): number {
    const mask = this.keys.length - 1;
    let i = Math.imul(key, 0x9e3779b1) >>> this.shift;
    while (this.keys[i] !== -1 && this.keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  /** Ids are below 65536, so the pair packs into one Int32 (-1, both 65535, never occurs). */
  set(first: number, second: number, rank: number): void {
    const key = (first << 16) | second;
    const i = this.slot(key);
    this.keys[i] = key;
    this.ranks[i] = rank;
  }

  /** The pair's merge rank, or -1. */
  get(first: number, second: number): number {
    const key = (first << 16) | second;
    const i = this.slot(key);
    return this.keys[i] === -1 ? -1 : this.ranks[i]!;
  }
}

export class ClipTokenizer {
  /** Id -> token string: token i is vocabText.slice(vocabStart[i], vocabStart[i + 1]). */
  private readonly vocabText: string;
  private readonly vocabStart: Int32Array;
  /** Id of each byte's symbol; + 256 for the same symbol with `</w>`. */
  private readonly byteIds: Int32Array;
  /** Merge rank of a pair of ids; `merged[rank]` is the id of the joined symbol. */
  private readonly ranks: MergeTable;
  private readonly merged: Int32Array;
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(parts: { vocabText: string; vocabStart: Int32Array; byteIds: Int32Array; ranks: MergeTable; merged: Int32Array }) {
    this.vocabText = parts.vocabText;
    this.vocabStart = parts.vocabStart;
    this.byteIds = parts.byteIds;
    this.ranks = parts.ranks;
    this.merged = parts.merged;
  }

  /**
   * Parses the merges file's text and builds the tables, pausing (yield) every STEP lines or pairs:
   * fromFile lets the event loop run at each pause, so that a caller's I/O (ffmpeg's frames, say) is not
   * held up for the whole build (about 0.1 s); fromMergesText runs it straight through.
   */
  private static *build(text: string, source: string): Generator<void, ClipTokenizer> {
    const STEP = 2048;
    const bad = (why: string) =>
      new VideoAnalysisError(
        "IO_ERROR",
        `${source} is not CLIP's BPE merges file (${CLIP_BPE_FILENAME} from openai/CLIP): ${why}.`,
        { details: { file: source } },
      );
    const merges: Array<[string, string]> = [];
    // The header line is `#version: 0.2` (openai/CLIP's copy has the file name before it); merges follow.
    let start = text.indexOf("\n") + 1;
    if (start === 0 || !text.slice(0, start).includes("#version")) throw bad("the first line is not a `#version` header");
    for (let line = 1; line <= CLIP_NUM_MERGES; line++) {
      let end = text.indexOf("\n", start);
      if (end === -1) end = text.length;
      if (start >= text.length) throw bad(`it has ${line - 1} merges, CLIP needs ${CLIP_NUM_MERGES}`);
      const parts = text.slice(start, end).trim().split(" ");
      if (parts.length !== 2 || !parts[0] || !parts[1]) throw bad(`line ${line + 1} is not a pair of symbols`);
      merges.push([parts[0], parts[1]]);
      start = end + 1;
      if (line % STEP === 0) yield;
    }

    const vocab: string[] = BYTE_ORDER.map((b) => BYTE_TO_CHAR[b]!);
    const n = vocab.length;
    for (let i = 0; i < n; i++) vocab.push(vocab[i] + END_OF_WORD);
    for (const [a, b] of merges) vocab.push(a + b);
    vocab.push(SOT_TEXT, EOT_TEXT);
    // Only while building: string -> id (the last id of a string that occurs twice, as a dict would keep).
    const encoder = new Map<string, number>();
    for (let i = 0; i < vocab.length; i++) {
      encoder.set(vocab[i]!, i);
      if ((i + 1) % STEP === 0) yield;
    }
    const byteIds = new Int32Array(256);
    BYTE_ORDER.forEach((b, i) => (byteIds[b] = i));
    const ranks = new MergeTable(merges.length);
    const merged = new Int32Array(merges.length);
    for (let rank = 0; rank < merges.length; rank++) {
      const [a, b] = merges[rank]!;
      const [ia, ib] = [encoder.get(a), encoder.get(b)];
      merged[rank] = encoder.get(a + b)!;
      // A pair of symbols outside the vocabulary can never be formed, so it never merges.
      if (ia !== undefined && ib !== undefined) ranks.set(ia, ib, rank);
      if ((rank + 1) % STEP === 0) yield;
    }
    const vocabStart = new Int32Array(vocab.length + 1);
    vocab.forEach((t, i) => (vocabStart[i + 1] = vocabStart[i]! + t.length));
    return new ClipTokenizer({ vocabText: vocab.join(""), vocabStart, byteIds, ranks, merged });
  }

  /** Vocabulary size (49,408 for CLIP). */
  get vocabSize(): number {
    return this.vocabStart.length - 1;
  }

  /**
   * Reads the merges file (gzip as openai/CLIP ships it, or already decompressed text).
   * Throws an IO_ERROR naming the file when it is missing or is not a CLIP BPE merges file.
   */
  static async fromFile(path: string): Promise<ClipTokenizer> {
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw missingBpeError([path], e);
      throw new VideoAnalysisError("IO_ERROR", `Cannot read CLIP's BPE vocabulary file ${path}: ${(e as Error).message}`, {
        details: { file: path },
        cause: e,
      });
    }
    let text: string;
    try {
      text = (raw[0] === 0x1f && raw[1] === 0x8b ? await gunzipAsync(raw, { chunkSize: 1 << 20 }) : raw).toString("utf8");
    } catch (e) {
      throw new VideoAnalysisError("IO_ERROR", `CLIP's BPE vocabulary file ${path} is not a readable gzip file: ${(e as Error).message}`, {
        details: { file: path },
        cause: e,
      });
    }
    const steps = ClipTokenizer.build(text, path);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await setImmediatePromise();
    }
  }

  /** Loads from wherever `resolveClipBpePath` finds the file. */
  static async load(location: ClipBpeLocation = {}): Promise<ClipTokenizer> {
    return ClipTokenizer.fromFile(resolveClipBpePath(location));
  }

  /** Builds the tokenizer from the merges file's text (`source` names it in errors). */
  static fromMergesText(text: string, source = "CLIP BPE merges"): ClipTokenizer {
    const steps = ClipTokenizer.build(text, source);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** Token ids of `text`, with SOT first and EOT last, no padding and no length limit. */
  encode(text: string): number[] {
    const ids: number[] = [CLIP_SOT];
    const clean = text.normalize("NFC").replace(/\s+/gu, " ").trim().toLowerCase();
    for (const [piece] of clean.matchAll(PIECE_PATTERN)) {
      if (piece === SOT_TEXT) ids.push(CLIP_SOT);
      else if (piece === EOT_TEXT) ids.push(CLIP_EOT);
      else for (const id of this.bpeIds(piece)) ids.push(id);
    }
    ids.push(CLIP_EOT);
    return ids;
  }

  /**
   * The model input: `encode(text)` cut or padded to `contextLength` (77), as INT64 for the
   * `INT64 [1,77]` text contract.
   */
  tokenize(text: string, contextLength = CLIP_CONTEXT_LENGTH, options: TokenizeOptions = {}): BigInt64Array {
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `CLIP context length must be an integer >= 2, got ${contextLength}.`);
    }
    const padId = options.padId ?? 0;
    let ids = this.encode(text);
    if (ids.length > contextLength) {
      if (options.truncate === false) {
        throw new VideoAnalysisError(
          "INVALID_ARGUMENT",
          `CLIP prompt "${text}" is ${ids.length} tokens long; the text model takes at most ${contextLength} (with start and end tokens).`,
          { details: { prompt: text, tokens: ids.length, contextLength } },
        );
      }
      ids = ids.slice(0, contextLength);
      ids[contextLength - 1] = CLIP_EOT;
    }
    const out = new BigInt64Array(contextLength).fill(BigInt(padId));
    for (let i = 0; i < ids.length; i++) out[i] = BigInt(ids[i]!);
    return out;
  }

  /** Index of the EOT token: the first position of the largest id (what the text contract's client picks). */
  eotIndex(ids: ArrayLike<number> | BigInt64Array): number {
    return eotIndex(ids);
  }

  /** Text back from ids (special tokens kept as text, `</w>` as a space), for logs and debugging. */
  decode(ids: Iterable<number | bigint>): string {
    const chars: string[] = [];
    for (const id of ids) {
      const i = Number(id);
      if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) throw new VideoAnalysisError("INVALID_ARGUMENT", `CLIP token id ${id} is outside the vocabulary.`);
      chars.push(this.vocabText.slice(this.vocabStart[i], this.vocabStart[i + 1]));
    }
    const joined = chars.join("");
    const bytes: number[] = [];
    for (const c of joined) bytes.push(CHAR_TO_BYTE.get(c) ?? 0x3f);
    return Buffer.from(bytes).toString("utf8").replaceAll(END_OF_WORD, " ");
  }

  /** BPE ids of one pre-token piece, cached. */
  private bpeIds(piece: string): readonly number[] {
    let ids = this.cache.get(piece);
    if (!ids) {
      ids = this.bpe(Buffer.from(piece, "utf8"));
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(piece, ids);
    }
    return ids;
  }

  /** Applies merges, lowest rank first, to a word's byte symbols (the last one with `</w>`). */
  private bpe(bytes: Uint8Array): number[] {
    let symbols = Array.from(bytes, (b) => this.byteIds[b]!);
    symbols[symbols.length - 1] = symbols[symbols.length - 1]! + 256;
    while (symbols.length > 1) {
      let best = -1;
      let first = -1;
      let second = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(symbols[i]!, symbols[i + 1]!);
        if (rank !== -1 && (best === -1 || rank < best)) {
          best = rank;
          first = symbols[i]!;
          second = symbols[i + 1]!;
        }
      }
      if (best === -1) break;
      // Merge every non-overlapping occurrence, left to right.
      const joined = this.merged[best]!;
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === first && i + 1 < symbols.length && symbols[i + 1] === second) {
          next.push(joined);
          i++;
        } else {
          next.push(symbols[i]!);
        }
      }
      symbols = next;
    }
    return symbols;
  }
}

/**
 * Index of the EOT token in a row of token ids: the first position of the largest id. With EOT being
 * the largest id in CLIP's vocabulary this is the EOT position whether padding is 0 or EOT.
 */
export function eotIndex(ids: ArrayLike<number> | BigInt64Array): number {
  if (ids.length === 0) throw new VideoAnalysisError("INVALID_ARGUMENT", "Cannot find the EOT token in an empty token row.");
  let best = 0;
  let bestValue = Number(ids[0]);
  for (let i = 1; i < ids.length; i++) {
    const v = Number(ids[i]);
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

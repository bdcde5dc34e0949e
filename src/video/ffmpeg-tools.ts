import { resolve } from "node:path";

/**
 * Where the ffmpeg and ffprobe executables are: $FFMPEG_PATH / $FFPROBE_PATH (the variables fluent-ffmpeg
 * reads too, so both ways of calling them agree), else the names on PATH.
 */
export function ffmpegPath(): string {
  return process.env.FFMPEG_PATH || "ffmpeg";
}

export function ffprobePath(): string {
  return process.env.FFPROBE_PATH || "ffprobe";
}

/**
 * The input argument for a local file. The `file:` prefix stops ffmpeg from reading a name such as
 * `http:x.mp4`, `concat:a|b` or `-x.mp4` as a protocol or an option.
 */
export function ffmpegFileUrl(path: string): string {
  return `file:${resolve(path)}`;
}

/** A line of ffmpeg's log written with `-loglevel level+...`: `[ctx @ 0x..] [error] text` or `[error] text`. */
export interface LogLine {
  level: string;
  text: string;
}

const LEVELS = new Set(["quiet", "panic", "fatal", "error", "warning", "info", "verbose", "debug", "trace"]);

/** Splits the level tag off a `-loglevel level+...` line; lines without one count as "info". */
export function parseLogLine(line: string): LogLine {
  // Optional "[component @ 0x...] " context, then "[level] ".
  const m = /^(?:\[[^\]]*@ [^\]]*\] )?\[([a-z]+)\] ?(.*)$/.exec(line);
  if (m && LEVELS.has(m[1]!)) {
    const ctx = /^\[([^\]@]*?) @ [^\]]*\] /.exec(line);
    return { level: m[1]!, text: ctx ? `${ctx[1]}: ${m[2]}` : m[2]! };
  }
  return { level: "info", text: line };
}

/** Keeps the last `max` lines of error-level output for error messages. */
export class ErrorTail {
  private readonly lines: string[] = [];
  count = 0;
  constructor(private readonly max = 5) {}
  add(text: string): void {
    this.count++;
    this.lines.push(text.trim());
    if (this.lines.length > this.max) this.lines.shift();
  }
  get last(): readonly string[] {
    return this.lines;
  }
  /** "a; b; c" or the fallback when ffmpeg said nothing useful. */
  summary(fallback = "no error message from ffmpeg"): string {
    return this.lines.length ? this.lines.join("; ") : fallback;
  }
}

/** How far a run is, passed to `onProgress` after every analysed frame. */
export interface Progress {
  /** Frames analysed and written so far. */
  frames: number;
  /** Frames expected in all (from the video's metadata; an estimate), null when unknown. */
  total: number | null;
  elapsedMs: number;
  /** Analysed frames per second so far. */
  fps: number;
  /** Estimated time left, null when unknown. */
  etaMs: number | null;
  /** Set while the run waits for a server to come back: what it waits for. */
  waiting?: string;
}

/** Builds Progress values for a run started now. */
export class ProgressMeter {
  private readonly t0 = performance.now();
  frames: number;

  private start = 0;

  constructor(readonly total: number | null) {
    this.frames = 0;
  }

  /** A resumed run: `frames` were done before; the rate counts only this run's. */
  restart(frames: number): void {
    this.frames = this.start = frames;
  }

  tick(): Progress {
    this.frames++;
    return this.snapshot();
  }

  snapshot(): Progress {
    const elapsedMs = performance.now() - this.t0;
    const fps = elapsedMs > 0 ? ((this.frames - this.start) * 1000) / elapsedMs : 0;
    const total = this.total === null ? null : Math.max(this.total, this.frames);
    const etaMs = total !== null && fps > 0 ? ((total - this.frames) / fps) * 1000 : null;
    return { frames: this.frames, total, elapsedMs, fps, etaMs };
  }
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}

/** One line of text for a progress value: `120/279 frames  43%  8.1 fps  ETA 0:19`. */
export function formatProgress(p: Progress): string {
  const of = p.total !== null ? `/${p.total}` : "";
  const pct = p.total ? `  ${String(Math.floor((100 * p.frames) / p.total)).padStart(3)}%` : "";
  const eta = p.etaMs !== null ? `  ETA ${clock(p.etaMs)}` : "";
  const waiting = p.waiting ? `  ${p.waiting}` : "";
  return `${p.frames}${of} frames${pct}  ${p.fps.toFixed(1)} fps  ${clock(p.elapsedMs)} elapsed${eta}${waiting}`;
}

export type ProgressMode = "bar" | "lines" | "none";

/**
 * Shows progress on a stream: a bar redrawn in place on a terminal (at most 10 times a second), plain
 * lines elsewhere (one every `lineEveryMs`, 5 s by default, and at the end), or nothing.
 *
 * @example
 * const progress = new ProgressReporter(process.stderr, ProgressReporter.modeFor(process.stderr, false)); // a bar on a terminal, lines elsewhere
 * const mm = await ModelManager.fromProfile("my_yolo.yaml");
 * try {
 *   await mm.run("people.mp4", { out: "runs/mine", maxFrames: 5, onProgress: (p) => progress.update(p) });
 *   progress.done();
 * } finally {
 *   await mm.close();
 * }
 */
export class ProgressReporter {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    readonly mode: ProgressMode,
    private readonly lineEveryMs = 5000,
  ) {}

  /** The mode for a stream: a bar on a terminal, lines otherwise; none when quiet. */
  static modeFor(out: { isTTY?: boolean }, quiet: boolean): ProgressMode {
    if (quiet) return "none";
    return out.isTTY ? "bar" : "lines";
  }

  update(p: Progress): void {
    if (this.mode === "none") return;
    const now = performance.now();
    const every = this.mode === "bar" ? 100 : this.lineEveryMs;
    if (this.drawn && now - this.lastDraw < every && p.frames !== p.total) return;
    this.lastDraw = now;
    this.drawn = true;
    if (this.mode === "lines") {
      this.out.write(`${formatProgress(p)}\n`);
      return;
    }
    const text = formatProgress(p);
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - text.length - 4));
    const filled = p.total ? Math.min(width, Math.round((width * p.frames) / p.total)) : 0;
    const bar = p.total ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
    this.out.write(`\r${bar}${text}\x1b[K`);
  }

  /** Ends the bar's line (and prints the last state in lines mode). */
  done(p?: Progress): void {
    if (this.mode === "none") return;
    if (p) {
      this.lastDraw = 0;
      this.drawn = false;
      this.update(p);
    }
    if (this.mode === "bar") this.out.write("\n");
  }
}

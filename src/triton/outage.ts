import { VideoAnalysisError, raceAbort } from "../errors.js";

/** A client waiting for the server to come back, as progress shows it. */
export interface OutageState {
  endpoint: string;
  /** What is still missing: "server unreachable (...)", "model midas_256 not ready". */
  waitingFor: string;
  waitedMs: number;
  budgetMs: number;
}

/** One outage, as the manifest records it. */
export interface OutageRecord {
  started_at: string;
  ended_at: string;
  seconds: number;
  /** The failure that started it. */
  reason: string;
  /** The models whose calls waited. */
  models: string[];
  /** Calls that waited and were made again. */
  calls_retried: number;
  /** False when the budget ran out first. */
  recovered: boolean;
}

interface Current {
  started: number;
  startedAt: Date;
  reason: string;
  models: Set<string>;
  calls: number;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Rides out a server that went away (killed, restarted, a model unloaded and loaded again): calls that
 * failed because of it wait, all together, until the server and their models answer READY again (polled
 * with backoff from 250 ms to 2 s), then are made again; past the budget they fail with a message saying
 * how long it waited and for what.
 */
export class OutageGuard {
  readonly records: OutageRecord[] = [];
  private current: Current | undefined;

  constructor(
    private readonly endpoint: string,
    readonly budgetMs: number,
    /** undefined when the server and every model are READY, else what is missing. */
    private readonly probe: (models: string[]) => Promise<string | undefined>,
    private readonly onState?: (s: OutageState | undefined) => void,
  ) {}

  /** Whether an outage is being waited out now. */
  get waiting(): boolean {
    return this.current !== undefined;
  }

  /** Waits until the server and `model` are READY again; throws UNAVAILABLE once the budget is spent. */
  async wait(model: string, reason: string, signal?: AbortSignal): Promise<void> {
    const c = this.current ?? this.start(reason);
    c.models.add(model);
    c.calls++;
    await (signal ? raceAbort(c.done, signal) : c.done);
  }

  private start(reason: string): Current {
    const c: Current = { started: performance.now(), startedAt: new Date(), reason, models: new Set(), calls: 0, done: Promise.resolve() };
    c.done = this.loop(c);
    // Waiters see the outcome; the loop's own rejection is theirs to handle.
    c.done.catch(() => undefined);
    this.current = c;
    return c;
  }

  private async loop(c: Current): Promise<void> {
    let backoff = 250;
    try {
      for (;;) {
        await sleep(Math.min(backoff, Math.max(0, this.budgetMs - (performance.now() - c.started))));
        backoff = Math.min(2000, backoff * 2);
        const missing = await this.probe([...c.models]).catch((e: unknown) => `server unreachable (${(e as Error).message})`);
        const waited = performance.now() - c.started;
        if (missing === undefined) return this.end(c, true);
        this.onState?.({ endpoint: this.endpoint, waitingFor: missing, waitedMs: waited, budgetMs: this.budgetMs });
        if (waited >= this.budgetMs) {
          this.end(c, false);
          throw new VideoAnalysisError(
            "UNAVAILABLE",
            `Triton at ${this.endpoint} did not come back within the outage budget of ${Math.round(this.budgetMs / 1000)} s (backend.triton.outage_budget_s): ${missing}; the outage began with: ${c.reason}`,
            { details: { outageMs: Math.round(waited) } },
          );
        }
      }
    } finally {
      if (this.current === c) this.current = undefined;
    }
  }

  private end(c: Current, recovered: boolean): void {
    const seconds = (performance.now() - c.started) / 1000;
    this.records.push({
      started_at: c.startedAt.toISOString(),
      ended_at: new Date().toISOString(),
      seconds: Math.round(seconds * 100) / 100,
      reason: c.reason,
      models: [...c.models].map((k) => k.replace("\u0000", " version ")).sort(),
      calls_retried: recovered ? c.calls : 0,
      recovered,
    });
    this.onState?.(undefined);
  }
}

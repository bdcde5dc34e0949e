// enqueue, worker and queue status: many videos over many machines through a BullMQ queue on Redis.
import { parseCommandArgs, required, usageError, type Command, type OptionSpecs } from "../command.js";
import { INPUT_OPTIONS, inputOptions, intFlag } from "./batch.js";

/** The Redis URL: --redis, else $VIDEO_SDK_REDIS_URL (keeps a password off the command line), else the local one. */
function redisUrl(flag: string | undefined): string {
  return flag ?? process.env.VIDEO_SDK_REDIS_URL ?? "redis://127.0.0.1:6379";
}

const QUEUE_OPTIONS = {
  redis: { type: "string", value: "URL", description: "the Redis server (default $VIDEO_SDK_REDIS_URL, else redis://127.0.0.1:6379)" },
  queue: { type: "string", default: "video-analysis", value: "NAME", description: "the BullMQ queue's name (default video-analysis)" },
} as const satisfies OptionSpecs;

export const enqueueCommand: Command = {
  name: "enqueue",
  summary: "add one job per video to a BullMQ queue for `worker`s (enqueuing the same videos again adds nothing)",
  usage:
    "video-analysis enqueue --profile P --out DIR [--redis URL] [--queue NAME] [--hash] [--retries N] [--backoff-ms MS] [--list FILE]... [--ext mp4,mov] [--fps F] [--json] <videos, folders or 'globs'...>  (URL also from $VIDEO_SDK_REDIS_URL)",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      ...INPUT_OPTIONS,
      ...QUEUE_OPTIONS,
      hash: { type: "boolean", default: false, description: "know a video by its content's SHA-256, not its size and modification time (reads every video; default off)" },
      retries: { type: "string", value: "N", description: "attempts after the first for a video that fails (default 2)" },
      "backoff-ms": { type: "string", value: "MS", description: "wait before the first retry, doubling at each (default 5000)" },
    }, true);
    const profile = required(this, "profile", values.profile);
    const out = required(this, "out", values.out);
    if (positionals.length === 0 && !values.list) throw usageError(this, "no videos: name files, folders or globs, or --list FILE");
    const { enqueueVideos } = await import("../../batch/queue.js");
    const { redactRedisUrl } = await import("../../batch/redis-url.js");
    const redis = redisUrl(values.redis);
    const r = await enqueueVideos(positionals, {
      ...inputOptions(values), redis, queue: values.queue, profile, out, hash: values.hash,
      retries: intFlag("retries", values.retries, 2, 0), backoffMs: intFlag("backoff-ms", values["backoff-ms"], 5000, 0),
    });
    if (values.json) console.log(JSON.stringify(r));
    else if (!values.quiet) console.log(`queue ${r.queue} at ${redactRedisUrl(redis)}: ${r.added} added, ${r.existing} already there (${r.jobs.length} videos)`);
    return 0;
  },
};

export const workerCommand: Command = {
  name: "worker",
  summary: "analyse videos from a BullMQ queue (filled by `enqueue`) until stopped (SIGTERM puts running jobs back)",
  usage: "video-analysis worker [--redis URL] [--queue NAME] [--concurrency N] [--lock-ms MS] [--stalled-ms MS] [--until-empty] [--quiet]  (URL also from $VIDEO_SDK_REDIS_URL)",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      ...QUEUE_OPTIONS,
      concurrency: { type: "string", value: "N", description: "videos analysed at once by this worker (default 1)" },
      "lock-ms": { type: "string", value: "MS", description: "how long a job stays this worker's without a renewal, then goes back to the queue; >= 1000 (default 30000)" },
      "stalled-ms": { type: "string", value: "MS", description: "how often jobs of workers that died are looked for; >= 100 (default 30000)" },
      "until-empty": { type: "boolean", default: false, description: "stop once nothing is waiting, delayed or running (for scripts; default: run until stopped)" },
      quiet: { type: "boolean", default: false, description: "print no log lines (default: one line per job event on stderr)" },
    });
    const { runWorker, queueStatus } = await import("../../batch/queue.js");
    const redis = redisUrl(values.redis);
    const log = values.quiet ? undefined : (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    const w = await runWorker({
      redis, queue: values.queue, concurrency: intFlag("concurrency", values.concurrency, 1, 1),
      ...(values["lock-ms"] ? { lockDurationMs: intFlag("lock-ms", values["lock-ms"], 30000, 1000) } : {}),
      ...(values["stalled-ms"] ? { stalledIntervalMs: intFlag("stalled-ms", values["stalled-ms"], 30000, 100) } : {}),
      ...(log ? { log } : {}),
    });
    // SIGTERM/SIGINT: running videos are cancelled and their jobs go back to the queue; a second signal exits at once.
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) process.exit(143);
      stopping = true;
      log?.(`${sig}: stopping; running jobs go back to the queue`);
      void w.close();
    };
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, onSignal);
    let poll: NodeJS.Timeout | undefined;
    if (values["until-empty"]) {
      // For scripts and benchmarks: stop once nothing is waiting, delayed (a retry's backoff) or running.
      poll = setInterval(() => {
        queueStatus({ redis, queue: values.queue }).then((s) => {
          if (s.counts.waiting + s.counts.active + s.counts.delayed === 0) void w.close();
        }, () => undefined);
      }, 500);
    }
    await w.closed;
    clearInterval(poll);
    log?.(`worker stopped: ${w.counts.done} done, ${w.counts.failed} failed attempts, ${w.counts.released} released`);
    return 0;
  },
};

export const queueCommand: Command = {
  name: "queue",
  summary: "queue status: waiting/active/completed/failed jobs of a BullMQ queue and the failed jobs' errors",
  usage: "video-analysis queue status [--redis URL] [--queue NAME] [--json]  (URL also from $VIDEO_SDK_REDIS_URL)",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, { ...QUEUE_OPTIONS, json: { type: "boolean", default: false, description: "print the status as one JSON object instead of text" } }, true);
    const [sub, ...extra] = positionals;
    if (sub !== "status") throw usageError(this, `${sub ? `unknown queue command "${sub}"` : "name a queue command"}: status`);
    if (extra.length > 0) throw usageError(this, `queue status takes no arguments, got "${extra.join('", "')}"`);
    const { queueStatus } = await import("../../batch/queue.js");
    const { redactRedisUrl } = await import("../../batch/redis-url.js");
    const redis = redisUrl(values.redis);
    const s = await queueStatus({ redis, queue: values.queue });
    if (values.json) {
      console.log(JSON.stringify(s));
      return 0;
    }
    const c = s.counts;
    console.log(`queue ${s.queue} at ${redactRedisUrl(redis)}: ${c.waiting} waiting, ${c.active} active, ${c.delayed} delayed (retry backoff), ${c.completed} completed, ${c.failed} failed`);
    for (const a of s.active) console.log(`active   ${a.video}${a.progress ? `: ${a.progress.frames}${a.progress.total ? `/${a.progress.total}` : ""} frames, ${a.progress.fps} fps` : ""}`);
    for (const f of s.failed) console.log(`failed   ${f.video} after ${f.attempts} attempt${f.attempts === 1 ? "" : "s"}: ${f.error}`);
    return 0;
  },
};

import { constants as osConstants } from "node:os";
import { parseArgs } from "node:util";
import { VideoAnalysisError } from "../errors.js";

/** One flag of a command: node:util parseArgs' settings, and what `--help` says of it. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[] | boolean[];
  /** One line for `<command> --help`: what the flag does, its default. */
  description: string;
  /** The value's placeholder in `--help` (string flags), e.g. "N" or "FILE". */
  value?: string;
}
export type OptionSpecs = Record<string, OptionSpec>;

/** One CLI command: a name, a one-line summary for `--help`, its usage text, and what it does. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** False where the command cannot run (bench outside a checkout): `--help` does not list it. */
  available?: boolean;
  /** Returns the process exit status. */
  run(argv: string[]): Promise<number>;
}

/** Thrown by parseCommandArgs once it has printed a command's help: the CLI exits 0. */
export class HelpShown extends Error {}

/**
 * A wrong command line: INVALID_ARGUMENT marked as a usage error (the CLI prints it on stderr with the
 * command's usage and exits 2, as command-line tools do).
 */
export function usageError(cmd: Pick<Command, "usage"> | undefined, message: string): VideoAnalysisError {
  return new VideoAnalysisError("INVALID_ARGUMENT", cmd ? `${message}\nusage: ${cmd.usage}` : message, { details: { usage: true } });
}

type CommandText = Pick<Command, "name" | "usage"> & { summary?: string };

/** `<command> --help`: the summary, the usage line and every option with its description. */
export function formatHelp(cmd: CommandText, options: OptionSpecs): string {
  const flags = Object.entries(options).map(([name, o]) => {
    const head = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return [head, `${o.description ?? ""}${o.multiple ? " (may be repeated)" : ""}`] as const;
  });
  flags.push(["-h, --help", "print this help and exit"]);
  const w = Math.max(...flags.map(([h]) => h.length));
  return [...(cmd.summary ? [`${cmd.name}: ${cmd.summary}`, ""] : []), `usage: ${cmd.usage}`, "", "options:", ...flags.map(([h, d]) => `  ${h.padEnd(w)}  ${d}`)].join("\n");
}

/**
 * node:util parseArgs with the SDK's errors: an unknown flag or a missing value is a usage error, not a
 * stack trace. `--help` (or `-h`) anywhere prints the command's help and throws HelpShown.
 */
export function parseCommandArgs<T extends OptionSpecs>(
  cmd: CommandText,
  argv: string[],
  options: T,
  positionals = false,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(formatHelp(cmd, options));
    throw new HelpShown();
  }
  const config = Object.fromEntries(Object.entries(options).map(([k, { description: _d, value: _v, ...o }]) => [k, o])) as T;
  try {
    return parseArgs({ args: argv, options: config, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw usageError(cmd, (e as Error).message);
  }
}

/** A required flag's value, or a usage error naming the flag. */
export function required<T>(cmd: Pick<Command, "usage">, flag: string, value: T | undefined): T {
  if (value === undefined) throw usageError(cmd, `--${flag} is required`);
  return value;
}

/** A numeric flag's value, checked (a usage error when it is not a number in range). */
export function numberFlag(flag: string, value: string | undefined, fallback: number, range: { min?: number; max?: number } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
    const r = [range.min !== undefined ? `>= ${range.min}` : "", range.max !== undefined ? `<= ${range.max}` : ""].filter(Boolean).join(" and ");
    throw usageError(undefined, `--${flag} must be a number${r ? ` ${r}` : ""}, got "${value}"`);
  }
  return n;
}

/** A long command's way to stop on Ctrl-C, SIGTERM or SIGHUP (see stopOnSignals). */
export interface SignalStop {
  /** Aborted (CANCELLED) by the first signal; give it to the work. */
  readonly signal: AbortSignal;
  /** The signal that stopped the command, if one did. */
  readonly stoppedBy: NodeJS.Signals | undefined;
  /** 128 + the signal's number: the exit status of a command a signal stopped. */
  exitStatus(): number;
  /** Stops listening (call it when the command ends). */
  release(): void;
}

/**
 * Ctrl-C, SIGTERM and SIGHUP (the terminal closed) stop a long command cleanly: the first aborts the
 * signal, so the work winds down and cleans up; a second exits at once. `say` is the line for stderr
 * (none when quiet, nor after SIGHUP: the terminal is gone).
 */
export function stopOnSignals(say: ((sig: NodeJS.Signals) => string) | undefined): SignalStop {
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const status = (sig: NodeJS.Signals) => 128 + (osConstants.signals[sig] ?? 2);
  const onSignal = (sig: NodeJS.Signals) => {
    if (stoppedBy) process.exit(status(sig));
    stoppedBy = sig;
    if (say && sig !== "SIGHUP") process.stderr.write(`\n${sig}: ${say(sig)} (again to exit at once)\n`);
    controller.abort(new VideoAnalysisError("CANCELLED", `interrupted by ${sig}`));
  };
  const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of SIGNALS) process.on(sig, onSignal);
  return {
    signal: controller.signal,
    get stoppedBy() {
      return stoppedBy;
    },
    exitStatus: () => status(stoppedBy ?? "SIGINT"),
    release: () => {
      for (const sig of SIGNALS) process.off(sig, onSignal);
    },
  };
}

import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;
import { VideoAnalysisError } from "../errors.js";

/** One CLI command: a name, a one-line summary for `--help`, its usage text, and what it does. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the process exit status. */
  run(argv: string[]): Promise<number>;
}

/**
 * node:util parseArgs with the SDK's error: an unknown flag or a missing value becomes INVALID_ARGUMENT
 * with the command's usage, not a stack trace.
 */
export function parseCommandArgs<T extends Options>(cmd: Pick<Command, "name" | "usage">, argv: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: false; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `${(e as Error).message}\nusage: ${cmd.usage}`);
  }
}

/** A required flag's value, or an INVALID_ARGUMENT naming the flag. */
export function required<T>(cmd: Pick<Command, "usage">, flag: string, value: T | undefined): T {
  if (value === undefined) throw new VideoAnalysisError("INVALID_ARGUMENT", `--${flag} is required\nusage: ${cmd.usage}`);
  return value;
}

/** A numeric flag's value, checked. */
export function numberFlag(flag: string, value: string | undefined, fallback: number, range: { min?: number; max?: number } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
    const r = [range.min !== undefined ? `>= ${range.min}` : "", range.max !== undefined ? `<= ${range.max}` : ""].filter(Boolean).join(" and ");
    throw new VideoAnalysisError("INVALID_ARGUMENT", `--${flag} must be a number${r ? ` ${r}` : ""}, got "${value}"`);
  }
  return n;
}

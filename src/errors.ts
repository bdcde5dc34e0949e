import { setMaxListeners } from "node:events";

/**
 * The one error type of the SDK. `code` is for programs (the gRPC status name where the failure came
 * from a gRPC call, otherwise one of the SDK's own codes), `model` names the model involved if any,
 * and `message` is a sentence a person can act on.
 */
export type ErrorCode =
  // gRPC status names, as Triton returns them.
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED"
  // The SDK's own.
  | "CONTRACT_MISMATCH"
  | "MODEL_NOT_READY"
  | "PROFILE_INVALID"
  | "ROUTING_FAILED"
  | "VIDEO_INVALID"
  | "IO_ERROR";

export interface ErrorDetails {
  /** gRPC status number when the error came from a gRPC call. */
  grpcStatus?: number;
  /** Retry accounting for calls that were retried. */
  attempts?: number;
  elapsedMs?: number;
  /** Anything else worth keeping for programs (tensor name, file, key path...). */
  [key: string]: unknown;
}

/**
 * The one error type of the SDK: `code` for programs, `message` for people (what failed and what to
 * do), `model` and `details` (file, key path, gRPC status...) where known. Every failure the SDK reports is one.
 *
 * @example
 * try {
 *   await ModelManager.fromProfile("no-such-profile.yaml");
 * } catch (e) {
 *   if (!(e instanceof VideoAnalysisError)) throw e;
 *   console.log(e.code, e.message); // IO_ERROR cannot read profile no-such-profile.yaml: ENOENT ...; pass the path of a YAML profile (see profiles/)
 * }
 */
export class VideoAnalysisError extends Error {
  override readonly name = "VideoAnalysisError";
  readonly code: ErrorCode;
  readonly model: string | undefined;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: { model?: string; details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.model = options.model;
    this.details = options.details ?? {};
  }

  /** `[CODE] model: message` — what the CLI prints instead of a stack trace. */
  override toString(): string {
    return `[${this.code}]${this.model ? ` ${this.model}:` : ""} ${this.message}`;
  }
}

export function isVideoAnalysisError(e: unknown): e is VideoAnalysisError {
  return e instanceof VideoAnalysisError;
}

// gRPC's status numbers 1..16 in order (0 is OK), as the SDK's own gRPC client reads them from grpc-status.
const GRPC_CODES: ErrorCode[] = [
  "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
  "DATA_LOSS", "UNAUTHENTICATED",
];
const grpcNames = new Map<number, ErrorCode>(GRPC_CODES.map((name, i) => [i + 1, name]));

/** The status name of a gRPC status number ("UNKNOWN" for numbers gRPC does not define). */
export function grpcCodeName(code: number): ErrorCode {
  return grpcNames.get(code) ?? "UNKNOWN";
}

/** The error an aborted signal stands for: a failure's own error, else CANCELLED ("`what` was cancelled"). */
export function abortError(signal: AbortSignal, what = "the run"): Error {
  const r: unknown = signal.reason;
  if (r instanceof VideoAnalysisError) return r;
  if (r instanceof Error && r.name !== "AbortError") return r;
  return new VideoAnalysisError("CANCELLED", `${what} was cancelled`, { cause: r });
}

/**
 * Listens once for the signal's abort. One signal is shared by every call in flight (a run's, or the one
 * an application passes to many process()/detect() calls at once), so many listeners on it are normal:
 * its listener limit is lifted, where Node would print MaxListenersExceededWarning past 10.
 */
export function listenAbort(signal: AbortSignal, onAbort: () => void): void {
  setMaxListeners(0, signal);
  signal.addEventListener("abort", onAbort, { once: true });
}

/** `p`, or abortError(signal) as soon as the signal aborts (p itself is not stopped). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal, what?: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    listenAbort(signal, onAbort);
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * gRPC over node:http2, for Triton's one service. A call is an HTTP/2 POST whose DATA is gRPC's 5-byte
 * prefix and the message; the answer is DATA frames and a grpc-status trailer. Written on node:http2
 * rather than grpc-js's generic client because that one copies each message into a new buffer on the way
 * out (framing) and concatenates the received frames on the way in, then hands the result to a protobuf
 * library that copies tensors again; here the caller's parts are written as they are and an answer is
 * received into one buffer it is read from in place (bench client has the figures).
 */
import * as http2 from "node:http2";
import { isIP } from "node:net";
import { grpcCodeName, listenAbort, type ErrorCode } from "../../errors.js";
import { TransportError, type CallOptions, type ConnectionOptions } from "../protocol.js";
import { parseEndpoint } from "../target.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;
const USER_AGENT = "video-analysis-sdk (node http2)";
// A receive window that holds whole answers: with HTTP/2's default 64 KiB the server stops for a window
// update many times per output tensor (a [1,84,18900] FP32 output is 6.4 MB).
const WINDOW = 16 << 20;
const CONNECTION_WINDOW = 64 << 20;

/** HTTP statuses a proxy may answer with instead of gRPC, as gRPC maps them (doc/http-grpc-status-mapping.md). */
function httpStatusCode(status: number): ErrorCode {
  switch (status) {
    case 400: return "INTERNAL";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "UNIMPLEMENTED";
    case 429: case 502: case 503: case 504: return "UNAVAILABLE";
    default: return "UNKNOWN";
  }
}

function rstCode(code: number): ErrorCode {
  switch (code) {
    case NGHTTP2_REFUSED_STREAM: return "UNAVAILABLE";
    case NGHTTP2_ENHANCE_YOUR_CALM: return "RESOURCE_EXHAUSTED";
    case NGHTTP2_INADEQUATE_SECURITY: return "PERMISSION_DENIED";
    default: return "INTERNAL";
  }
}

function grpcMessage(v: unknown): string {
  if (typeof v !== "string") return "";
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** One endpoint's connection, made again when it has gone. */
class Connection {
  session: http2.ClientHttp2Session | undefined;
  /** Why the last connection failed or closed, for the messages of the calls it takes down. */
  lastError = "";
  active = 0;

  constructor(readonly authority: string, private readonly url: string, private readonly options: ConnectionOptions) {}

  get(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const tls = this.options.tls;
    const host = this.url.replace(/^https?:\/\//, "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    const session = http2.connect(this.url, {
      settings: { initialWindowSize: WINDOW, enablePush: false, maxFrameSize: (1 << 24) - 1 },
      // Node's default (10 MB) counts answers waiting to be read; several 6 MB answers in flight exceed it.
      maxSessionMemory: 1024,
      ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, ...(isIP(host) ? {} : { servername: host }), ALPNProtocols: ["h2"] } : {}),
    });
    session.on("connect", () => {
      session.setLocalWindowSize(CONNECTION_WINDOW);
      this.lastError = "";
    });
    // A port that accepts the connection and never answers (not Triton, or a hung server) is given up.
    const silent = setTimeout(() => {
      this.lastError = `no answer from ${this.authority} within ${this.options.connectTimeoutMs} ms of connecting (is it Triton's gRPC port, and is the server responsive?)`;
      session.destroy();
    }, this.options.connectTimeoutMs);
    silent.unref();
    session.once("remoteSettings", () => clearTimeout(silent));
    session.once("close", () => clearTimeout(silent));
    session.on("error", (e: Error) => (this.lastError = e.message));
    session.on("goaway", (code: number) => (this.lastError ||= `the server closed the connection (GOAWAY ${code})`));
    const pinger = this.startKeepalive(session);
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
      clearInterval(pinger);
    });
    // Idle connections do not keep the process alive; calls in flight do (hold/release).
    if (this.active === 0) session.unref();
    this.session = session;
    return session;
  }

  /** Pings while calls are under way; the interval belongs to this session and ends with it. */
  private startKeepalive(session: http2.ClientHttp2Session): NodeJS.Timeout | undefined {
    const every = this.options.keepaliveTimeMs;
    if (!(every > 0)) return undefined;
    const pinger = setInterval(() => {
      // Only while calls are under way: Triton closes connections that ping idle more often than every 5 minutes.
      if (this.active === 0 || session.closed || session.destroyed || session.connecting) return;
      const timer = setTimeout(() => {
        this.lastError = `keepalive ping unanswered for ${this.options.keepaliveTimeoutMs} ms`;
        session.destroy();
      }, this.options.keepaliveTimeoutMs);
      timer.unref();
      try {
        session.ping(() => clearTimeout(timer));
      } catch {
        clearTimeout(timer);
      }
    }, every);
    pinger.unref();
    return pinger;
  }

  hold(): void {
    if (this.active++ === 0) this.session?.ref();
  }

  release(): void {
    if (--this.active === 0) this.session?.unref();
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}

/** Reads gRPC's length-prefixed messages out of DATA chunks; a message is one buffer, copied once at most. */
class MessageReader {
  private head = Buffer.allocUnsafe(5);
  private headLen = 0;
  private msg: Buffer | undefined;
  private msgLen = 0;
  private filled = 0;

  /**
   * `align` gives, from a message's first bytes, the offset within it that should start on an 8-byte
   * boundary (or -1): typed arrays over the message then need no copy.
   */
  constructor(private readonly max: number, private readonly onMessage: (m: Buffer) => void, private readonly align?: (head: Buffer) => number) {}

  /** Throws TransportError for a compressed or oversized message. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.msg) {
        // The 5-byte prefix, possibly split over chunks.
        if (this.headLen === 0 && chunk.length - at >= 5) {
          this.start(chunk[at]!, chunk.readUInt32BE(at + 1));
          at += 5;
        } else {
          const n = Math.min(5 - this.headLen, chunk.length - at);
          chunk.copy(this.head, this.headLen, at, at + n);
          this.headLen += n;
          at += n;
          if (this.headLen < 5) return;
          this.start(this.head[0]!, this.head.readUInt32BE(1));
        }
        if (this.msgLen === 0) {
          this.done(Buffer.alloc(0));
          continue;
        }
        // A message wholly inside this chunk is a view of it; else it is gathered into its own buffer.
        if (chunk.length - at >= this.msgLen) {
          const m = chunk.subarray(at, at + this.msgLen);
          at += this.msgLen;
          this.done(m);
          continue;
        }
        const at8 = this.align?.(chunk.subarray(at)) ?? -1;
        const base = at8 < 0 ? 0 : (8 - (at8 % 8)) % 8;
        this.msg = Buffer.allocUnsafeSlow(this.msgLen + base).subarray(base);
        this.filled = 0;
      }
      const n = Math.min(this.msgLen - this.filled, chunk.length - at);
      chunk.copy(this.msg, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === this.msgLen) {
        const m = this.msg;
        this.msg = undefined;
        this.done(m);
      }
    }
  }

  private start(flag: number, len: number): void {
    if (flag !== 0) throw new TransportError("UNIMPLEMENTED", "the server sent a compressed message, which this client does not ask for or accept");
    if (len > this.max) throw new TransportError("RESOURCE_EXHAUSTED", `received message larger than max (${len} vs. ${this.max})`);
    this.msgLen = len;
  }

  private done(m: Buffer): void {
    this.headLen = 0;
    this.msgLen = 0;
    this.onMessage(m);
  }

  get partial(): boolean {
    return this.headLen > 0 || this.msg !== undefined;
  }
}

/** A call under way: write messages, receive messages, end with a status. */
export interface GrpcCall {
  write(parts: readonly Uint8Array[]): void;
  /** No more messages from this side. */
  end(): void;
  cancel(): void;
  /** Whether the call keeps the process alive (it does from its start): a stream waiting idle should not. */
  keepAlive(on: boolean): void;
}

export interface CallHandlers {
  onMessage(m: Buffer): void;
  /** The call's end: undefined for OK, else what went wrong. */
  onEnd(error: TransportError | undefined): void;
}

/**
 * gRPC calls to one or several endpoints of the same service, spread round robin. Each endpoint has
 * one HTTP/2 connection, made on the first call and made again after it breaks.
 */
export class GrpcChannel {
  private readonly connections: Connection[];
  private next = 0;
  private readonly baseHeaders: Record<string, string>;

  constructor(private readonly options: ConnectionOptions) {
    if (options.urls.length === 0) throw new TransportError("INVALID_ARGUMENT", "no Triton URL given; set backend.triton.url (or urls) in the profile");
    this.connections = options.urls.map((u) => {
      const { host, port } = parseEndpoint(u);
      const authority = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
      return new Connection(authority, `${options.tls ? "https" : "http"}://${authority}`, options);
    });
    this.baseHeaders = { "content-type": "application/grpc", te: "trailers", "user-agent": USER_AGENT };
    for (const [k, v] of Object.entries(options.headers)) this.baseHeaders[k.toLowerCase()] = v;
  }

  /**
   * Starts a call of `method` ("/package.Service/Method"). The handlers hear every message and exactly
   * one end. deadlineMs 0: none.
   */
  start(method: string, o: { deadlineMs: number; signal?: AbortSignal; align?: (head: Buffer) => number; connection?: number }, h: CallHandlers): GrpcCall {
    const conn = this.connections[(o.connection ?? this.next++) % this.connections.length]!;
    let ended = false;
    let held = true;
    let stream: http2.ClientHttp2Stream | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (e: TransportError | undefined) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      if (held) conn.release();
      held = false;
      h.onEnd(e);
    };
    const abortWith = (e: TransportError) => {
      if (stream && !stream.closed) stream.close(NGHTTP2_CANCEL);
      finish(e);
    };
    const onAbort = () => abortWith(new TransportError("CANCELLED", "cancelled by the caller"));
    conn.hold();
    if (o.signal?.aborted) {
      finish(new TransportError("CANCELLED", "cancelled by the caller"));
      return { write() {}, end() {}, cancel() {}, keepAlive() {} };
    }
    if (o.signal) listenAbort(o.signal, onAbort);
    const headers: http2.OutgoingHttpHeaders = { ...this.baseHeaders, ":method": "POST", ":path": method };
    if (o.deadlineMs > 0) {
      // gRPC's timeout header holds at most 8 digits.
      const ms = Math.max(1, Math.ceil(o.deadlineMs));
      headers["grpc-timeout"] = ms < 1e8 ? `${ms}m` : `${Math.min(99_999_999, Math.ceil(ms / 1000))}S`;
      timer = setTimeout(() => abortWith(new TransportError("DEADLINE_EXCEEDED", "Deadline exceeded")), o.deadlineMs);
    }
    try {
      stream = conn.get().request(headers, { endStream: false });
    } catch (e) {
      finish(new TransportError("UNAVAILABLE", `cannot start a call to ${conn.authority}: ${(e as Error).message}`, { grpc: 14 }));
      return { write() {}, end() {}, cancel() {}, keepAlive() {} };
    }
    let httpStatus = 0;
    let grpcStatus: number | undefined;
    let grpcMsg = "";
    let failure: TransportError | undefined;
    const reader = new MessageReader(
      this.options.maxReceiveMessageBytes,
      (m) => {
        if (!ended) h.onMessage(m);
      },
      o.align,
    );
    const s = stream;
    s.on("response", (hd) => {
      httpStatus = Number(hd[":status"]);
      // A "trailers-only" answer (an error before any message) carries the status in its headers.
      if (hd["grpc-status"] !== undefined) {
        grpcStatus = Number(hd["grpc-status"]);
        grpcMsg = grpcMessage(hd["grpc-message"]);
      }
    });
    s.on("data", (chunk: Buffer) => {
      if (ended || failure) return;
      try {
        reader.push(chunk);
      } catch (e) {
        failure = e as TransportError;
        s.close(NGHTTP2_CANCEL);
      }
    });
    s.on("trailers", (t) => {
      grpcStatus = Number(t["grpc-status"]);
      grpcMsg = grpcMessage(t["grpc-message"]);
    });
    s.on("error", (e: Error & { code?: string }) => {
      // A reset by the server (ERR_HTTP2_STREAM_ERROR) is read from its code when the stream closes.
      if (e.code === "ERR_HTTP2_STREAM_ERROR") return;
      failure ??= new TransportError("UNAVAILABLE", conn.lastError || e.message, { grpc: 14 });
    });
    s.on("close", () => {
      if (ended) return;
      if (failure) return finish(failure);
      if (grpcStatus !== undefined) {
        if (grpcStatus === 0) return finish(reader.partial ? new TransportError("INTERNAL", "the answer ended inside a message") : undefined);
        return finish(new TransportError(grpcCodeName(grpcStatus), grpcMsg, { grpc: grpcStatus }));
      }
      if (httpStatus && httpStatus !== 200) {
        const code = httpStatusCode(httpStatus);
        return finish(new TransportError(code, `the server answered HTTP ${httpStatus} without a gRPC status`, { http: httpStatus }));
      }
      // A cancel we did not ask for (ours ended the call before this) is the server or the connection
      // going away: node:http2 resets every open stream with CANCEL when its session is destroyed, also
      // a stream whose headers came long ago (a lane). UNAVAILABLE, never the caller's CANCELLED.
      // Other resets say what the server meant.
      if (s.rstCode && s.rstCode !== 0 && s.rstCode !== NGHTTP2_CANCEL) {
        const code = conn.lastError ? "UNAVAILABLE" : rstCode(s.rstCode);
        return finish(new TransportError(code, conn.lastError || `the server reset the call (HTTP/2 error ${s.rstCode})`));
      }
      finish(new TransportError("UNAVAILABLE", conn.lastError || `the connection to ${conn.authority} closed before the server answered`, { grpc: 14 }));
    });
    return {
      write(parts) {
        if (ended) return;
        for (const p of parts) s.write(p);
      },
      end() {
        if (!ended) s.end();
      },
      cancel: onAbort,
      keepAlive(on) {
        if (ended || on === held) return;
        held = on;
        if (on) conn.hold();
        else conn.release();
      },
    };
  }

  /** One request message, one response message. */
  unary(method: string, parts: readonly Uint8Array[], o: CallOptions & { align?: (head: Buffer) => number }): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let answer: Buffer | undefined;
      const call = this.start(method, o, {
        onMessage: (m) => (answer = m),
        onEnd: (e) => {
          if (e) reject(e);
          else if (answer) resolve(answer);
          else reject(new TransportError("INTERNAL", `${method}: the server ended the call without an answer`));
        },
      });
      call.write(parts);
      call.end();
    });
  }

  /** How many endpoints calls are spread over. */
  get size(): number {
    return this.connections.length;
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}

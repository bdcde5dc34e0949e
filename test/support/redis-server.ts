// A real redis-server (Debian's package) on a free loopback port, for the BullMQ worker tests.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { readFileSync } from "node:fs";
import { makeCertificates } from "./certificates.js";
import { freePort } from "./samples.js";

export interface RedisServer {
  /** redis://:password@127.0.0.1:port (rediss:// with TLS) */
  url: string;
  /** With TLS: the test CA that signed the server's certificate. */
  ca?: string;
  password: string;
  port: number;
  stop(): Promise<void>;
}

/** Why redis-server cannot run here, or undefined when it can. */
export function redisUnavailable(): string | undefined {
  try {
    const v = execFileSync("redis-server", ["--version"], { encoding: "utf8" });
    const m = /v=(\d+)\./.exec(v);
    if (m && Number(m[1]) < 6) return `redis-server ${m[1]}.x is too old (BullMQ wants >= 6)`;
    return undefined;
  } catch {
    return "redis-server is not installed (apt-get install redis-server; scripts/setup.sh does)";
  }
}

function ping(port: number, password: string, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = ca ? tlsConnect({ port, host: "127.0.0.1", ca: readFileSync(ca) }) : createConnection({ port, host: "127.0.0.1" });
    let buf = "";
    s.on(ca ? "secureConnect" : "connect", () => s.write(`AUTH ${password}\r\nPING\r\n`));
    s.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("+PONG")) {
        s.end();
        resolve(true);
      }
    });
    s.on("error", () => resolve(false));
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 500);
  });
}

/**
 * Starts redis-server with a password, no persistence, on a free port; resolves once it answers PING.
 * `tls`: TLS only, with a certificate of a test CA made in `tls.dir` (clients need not present one).
 */
export async function startRedis(options: { tls?: { dir: string } } = {}): Promise<RedisServer> {
  const port = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const certs = options.tls ? makeCertificates(options.tls.dir) : undefined;
  const listen = certs
    ? ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certs.serverCert, "--tls-key-file", certs.serverKey, "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "no"]
    : ["--port", String(port)];
  const child: ChildProcess = spawn("redis-server", [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (d) => (log += d.toString()));
  child.stderr!.on("data", (d) => (log += d.toString()));
  let stopping = false;
  child.once("exit", (code, sig) => {
    if (!stopping) console.log(`# redis-server on port ${port} exited by itself (${sig ?? code}):\n${log}`);
  });
  const end = Date.now() + 10_000;
  while (!(await ping(port, password, certs?.ca))) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not start on port ${port}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `${certs ? "rediss" : "redis"}://:${password}@127.0.0.1:${port}`,
    ...(certs ? { ca: certs.ca } : {}),
    password,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A test CA and a server and a client certificate it signed (openssl), valid for localhost and 127.0.0.1
 * for a day, written into `dir`: ca.pem, server.{key,pem}, client.{key,pem}. Returns the paths.
 */
export function makeCertificates(dir: string): { ca: string; serverKey: string; serverCert: string; clientKey: string; clientCert: string } {
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca");
  for (const who of ["server", "client"]) {
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who === "server" ? "localhost" : "client"}`);
    writeFileSync(f(`${who}.ext`), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    ssl("x509", "-req", "-in", `${who}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${who}.pem`, "-days", "1", "-extfile", `${who}.ext`);
  }
  return { ca: f("ca.pem"), serverKey: f("server.key"), serverCert: f("server.pem"), clientKey: f("client.key"), clientCert: f("client.pem") };
}

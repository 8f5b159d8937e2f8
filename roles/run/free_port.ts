// Free loopback ports for a local trial's nodes. The port is released before the node binds it,
// so another program could take it in between; nodes then fail with a clear "in use" error.
import { createServer } from "node:net";

export function freePort(hostname = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, hostname, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/** `count` consecutive free ports are not guaranteed; returns `count` distinct free ports. */
export async function freePorts(count: number, hostname = "127.0.0.1"): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempts = 0; ports.size < count && attempts < count * 10; attempts++) {
    ports.add(await freePort(hostname));
  }
  if (ports.size < count) throw new Error(`could not find ${count} free ports on ${hostname}`);
  return [...ports];
}

import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * Counts round trips on the wire: a loopback relay that records each client→server burst (client
 * bytes after the server last spoke). Server replies are held back 30 ms so everything a client
 * writes in one go lands in one burst even on a loaded machine; nothing here asserts on time.
 */
export class RoundTripCounter {
  bursts = 0;
  #serverSpoke = true;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  private constructor(host: string, port: number) {
    this.#server = createServer((client) => {
      const upstream = tcpConnect(port, host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk) => {
        if (this.#serverSpoke) this.bursts++;
        this.#serverSpoke = false;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        setTimeout(() => {
          this.#serverSpoke = true;
          client.write(chunk);
        }, 30);
      });
    });
  }

  /** A relay on 127.0.0.1 in front of `host:port`; connect to its `port`. */
  static async start(host: string, port: number): Promise<RoundTripCounter> {
    const counter = new RoundTripCounter(host, port);
    await new Promise<void>((resolve) => counter.#server.listen(0, '127.0.0.1', resolve));
    const address = counter.#server.address();
    counter.port = typeof address === 'object' && address ? address.port : 0;
    return counter;
  }

  /** Round trips `fn` makes on an already-open connection. */
  async count(fn: () => Promise<unknown>): Promise<number> {
    const before = this.bursts;
    await fn().catch(() => {});
    return this.bursts - before;
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does to traffic. */
export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'latency'; ms: number }
  /** Accept connections and never answer (a black-holed host). */
  | { kind: 'blackhole' }
  /** Reset every new connection as soon as it arrives; with `times`, only that many, then pass traffic again. */
  | { kind: 'reset'; times?: number };

/**
 * A loopback TCP proxy in front of PostgreSQL for fault tests: pass traffic, add latency,
 * black-hole, reset new connections, or reset every open connection now (`resetAll`).
 */
export class TcpProxy {
  port = 0;
  mode: ProxyMode = { kind: 'pass' };
  /** Client connections accepted since start, whatever the mode (counts connect attempts). */
  accepted = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {
    this.#server = createServer((socket) => this.#accept(socket));
  }

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    const address = proxy.#server.address();
    proxy.port = typeof address === 'object' && address ? address.port : 0;
    return proxy;
  }

  /** Number of client connections currently open through the proxy. */
  get connections(): number {
    return [...this.#sockets].filter((s) => !s.destroyed).length / 2;
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
  }

  #accept(client: Socket): void {
    const mode = this.mode;
    this.accepted++;
    this.#track(client);
    if (mode.kind === 'reset') {
      client.resetAndDestroy();
      if (mode.times !== undefined && --mode.times <= 0) this.mode = { kind: 'pass' };
      return;
    }
    if (mode.kind === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    this.#track(upstream);
    const pipe = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        const current = this.mode;
        if (current.kind === 'blackhole') return;
        if (current.kind === 'latency') setTimeout(() => to.destroyed || to.write(chunk), current.ms);
        else if (!to.destroyed) to.write(chunk);
      });
      from.on('close', () => to.destroy());
    };
    pipe(client, upstream);
    pipe(upstream, client);
  }

  /** Reset (RST) every open connection through the proxy. */
  resetAll(): void {
    for (const socket of this.#sockets) socket.resetAndDestroy();
    this.#sockets.clear();
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

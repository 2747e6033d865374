import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A loopback relay in front of `host:port` that hands every client→server and server→client chunk
 * to its subclass, which forwards it (and counts or parses on the way). Connect to its `port`.
 */
abstract class WireRelay {
  port = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  protected constructor(host: string, port: number) {
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
      client.on('data', (chunk: Buffer) => this.fromClient(chunk, upstream));
      upstream.on('data', (chunk: Buffer) => this.fromServer(chunk, client));
    });
  }

  protected abstract fromClient(chunk: Buffer, upstream: Socket): void;

  protected fromServer(chunk: Buffer, client: Socket): void {
    client.write(chunk);
  }

  protected async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this;
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

/**
 * Counts round trips on the wire: each client→server burst (client bytes after the server last
 * spoke). Server replies are held back 30 ms so everything a client writes in one go lands in one
 * burst even on a loaded machine; nothing here asserts on time.
 */
export class RoundTripCounter extends WireRelay {
  bursts = 0;
  #serverSpoke = true;

  /** A relay on 127.0.0.1 in front of `host:port`; connect to its `port`. */
  static start(host: string, port: number): Promise<RoundTripCounter> {
    return new RoundTripCounter(host, port).listen();
  }

  protected fromClient(chunk: Buffer, upstream: Socket): void {
    if (this.#serverSpoke) this.bursts++;
    this.#serverSpoke = false;
    upstream.write(chunk);
  }

  protected override fromServer(chunk: Buffer, client: Socket): void {
    setTimeout(() => {
      this.#serverSpoke = true;
      client.write(chunk);
    }, 30);
  }

  /** Round trips `fn` makes on an already-open connection. */
  async count(fn: () => Promise<unknown>): Promise<number> {
    const before = this.bursts;
    await fn().catch(() => {});
    return this.bursts - before;
  }
}

/**
 * Records statements on the wire: parses the frontend protocol and keeps the SQL text of every
 * statement *run* — each simple Query ('Q') and each Bind ('B'), by the text of the statement it
 * binds — so a statement prepared once and bound many times counts once per run, as it did when every
 * run was parsed anew. Parses ('P'), named or not, are kept apart in {@link parses}, Closes ('C' of a
 * statement) in {@link closes}.
 */
export class StatementCounter extends WireRelay {
  /** SQL text of each statement run (simple queries and Binds). */
  readonly statements: string[] = [];
  /** SQL text of each Parse message. */
  readonly parses: string[] = [];
  /** Names of the prepared statements closed. */
  readonly closes: string[] = [];
  /** What is not parsed yet, and the statements prepared so far, per connection (keyed by its upstream socket). */
  readonly #pending = new WeakMap<Socket, { buffer: Buffer; started: boolean; prepared: Map<string, string> }>();

  /** A relay on 127.0.0.1 in front of `host:port`; connect to its `port`. */
  static start(host: string, port: number): Promise<StatementCounter> {
    return new StatementCounter(host, port).listen();
  }

  protected fromClient(chunk: Buffer, upstream: Socket): void {
    upstream.write(chunk);
    let state = this.#pending.get(upstream);
    if (!state) {
      state = { buffer: Buffer.alloc(0), started: false, prepared: new Map() };
      this.#pending.set(upstream, state);
    }
    state.buffer = Buffer.concat([state.buffer, chunk]);
    for (;;) {
      const buffer = state.buffer;
      if (!state.started) {
        // Startup message: int32 length, no type byte.
        if (buffer.length < 4 || buffer.length < buffer.readInt32BE(0)) return;
        state.buffer = buffer.subarray(buffer.readInt32BE(0));
        state.started = true;
        continue;
      }
      if (buffer.length < 5) return;
      const type = String.fromCharCode(buffer[0] as number);
      const len = buffer.readInt32BE(1);
      if (buffer.length < 1 + len) return;
      const body = buffer.subarray(5, 1 + len);
      const cstring = (from: number) => body.subarray(from, body.indexOf(0, from)).toString();
      if (type === 'Q') this.statements.push(cstring(0));
      if (type === 'P') {
        const name = cstring(0);
        const text = cstring(Buffer.byteLength(name) + 1);
        state.prepared.set(name, text);
        this.parses.push(text);
      }
      if (type === 'B') {
        // Portal name, then statement name.
        const portal = cstring(0);
        const name = cstring(Buffer.byteLength(portal) + 1);
        this.statements.push(state.prepared.get(name) ?? `<unknown prepared statement ${name}>`);
      }
      if (type === 'C' && body[0] === 0x53) {
        const name = cstring(1);
        state.prepared.delete(name);
        this.closes.push(name);
      }
      state.buffer = buffer.subarray(1 + len);
    }
  }

  /** The statements `fn` runs. */
  async record(fn: () => Promise<unknown>): Promise<string[]> {
    return (await this.recordAll(fn)).statements;
  }

  /** The statements `fn` runs, the parses and the closes it sends. */
  async recordAll(fn: () => Promise<unknown>): Promise<{ statements: string[]; parses: string[]; closes: string[] }> {
    const before = { statements: this.statements.length, parses: this.parses.length, closes: this.closes.length };
    await fn();
    return {
      statements: this.statements.slice(before.statements),
      parses: this.parses.slice(before.parses),
      closes: this.closes.slice(before.closes),
    };
  }
}

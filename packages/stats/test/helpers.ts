import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import type { ConnectionFields } from '@accountdb/test-db';

/** A pool on a test database; every test file closes its pools in afterAll. */
export function poolFor(db: ConnectionFields, extra: PoolConfigInput = {}): Pool {
  return createPool({
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 4,
    ...extra,
  });
}

/** Poll `condition` until it holds; throws after `limitMs` (a bound for a loaded machine, not a timing assertion). */
export async function waitFor(condition: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Counts statements on the wire: a loopback relay that parses the frontend protocol and records
 * every simple Query ('Q') and every Parse ('P') message a client sends, with its SQL text.
 */
export class StatementCounter {
  readonly statements: string[] = [];
  port = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(host: string, port: number) {
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
      let buffer = Buffer.alloc(0);
      let started = false;
      client.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          if (!started) {
            // Startup message: int32 length, no type byte.
            if (buffer.length < 4) break;
            const len = buffer.readInt32BE(0);
            if (buffer.length < len) break;
            buffer = buffer.subarray(len);
            started = true;
            continue;
          }
          if (buffer.length < 5) break;
          const type = String.fromCharCode(buffer[0]!);
          const len = buffer.readInt32BE(1);
          if (buffer.length < 1 + len) break;
          const body = buffer.subarray(5, 1 + len);
          if (type === 'Q') this.statements.push(body.subarray(0, body.indexOf(0)).toString());
          if (type === 'P') {
            const nameEnd = body.indexOf(0);
            this.statements.push(body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString());
          }
          buffer = buffer.subarray(1 + len);
        }
      });
      upstream.on('data', (chunk) => client.write(chunk));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  /** The statements `fn` sends. */
  async record(fn: () => Promise<unknown>): Promise<string[]> {
    const before = this.statements.length;
    await fn();
    return this.statements.slice(before);
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

/**
 * The protocol's CancelRequest (postgres.js `cancel({ pid, secret })`, pgx `CancelRequest`, libpq
 * `PQcancel`): a new connection carrying only the backend's process id and secret key, which the
 * server answers by closing it. No login, no connection slot, and PgBouncer maps the key to the server
 * backend its client is paired with.
 */

import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import type { HostPort } from './config.js';
import { DatabaseUnavailableError } from './errors.js';

/** What a CancelRequest needs: where the backend's connection went, and the key it sent in BackendKeyData. */
export interface CancelTarget {
  readonly host: HostPort;
  readonly processId: number;
  readonly secretKey: number;
  /** The connection's TLS options when it is encrypted (the key then travels encrypted too, as libpq 17 does). */
  readonly tls: ConnectionOptions | false;
}

const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;

/** The 16-byte CancelRequest: length, request code, process id, secret key. */
export function cancelRequestBytes(processId: number, secretKey: number): Buffer {
  const bytes = Buffer.alloc(16);
  bytes.writeInt32BE(16, 0);
  bytes.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  bytes.writeInt32BE(processId, 8);
  bytes.writeInt32BE(secretKey, 12);
  return bytes;
}

function sslRequestBytes(): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeInt32BE(8, 0);
  bytes.writeInt32BE(SSL_REQUEST_CODE, 4);
  return bytes;
}

/**
 * Send a CancelRequest for `target` and wait until the server closes that connection, within
 * `timeoutMs` overall. The server never answers a CancelRequest, so a backend that already finished
 * (or belongs to nobody) is not an error. Throws {@link DatabaseUnavailableError} when the server
 * cannot be reached, refuses TLS, or does not close within the bound.
 */
export function sendCancelRequest(target: CancelTarget, timeoutMs: number): Promise<void> {
  const { host, port } = target.host;
  return new Promise<void>((resolve, reject) => {
    let socket: Socket;
    let settled = false;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined) resolve();
      else reject(new DatabaseUnavailableError(host, port, error));
    };
    const timer = setTimeout(() => finish(new Error(`cancel request timed out after ${timeoutMs} ms`)), timeoutMs);
    const sendCancel = (on: Socket) => {
      on.on('error', finish);
      // The server reads the request, signals the backend, and closes: end or close means it was delivered.
      on.on('end', () => finish());
      on.on('close', () => finish());
      on.on('data', () => {});
      on.write(cancelRequestBytes(target.processId, target.secretKey));
    };
    // A host starting with "/" is a Unix-socket directory (libpq convention).
    socket = host.startsWith('/') ? tcpConnect(`${host}/.s.PGSQL.${port}`) : tcpConnect(port, host);
    socket.setNoDelay(true);
    socket.on('error', finish);
    socket.once('connect', () => {
      const tls = target.tls;
      if (tls === false) {
        sendCancel(socket);
        return;
      }
      socket.once('data', (reply) => {
        if (reply[0] !== 0x53 /* S */) {
          finish(new Error('the server refused TLS for the cancel request'));
          return;
        }
        const secure = tlsConnect({
          ...tls,
          socket,
          ...(isIP(host) === 0 && !host.startsWith('/') ? { servername: host } : {}),
          host,
        });
        socket = secure;
        secure.once('secureConnect', () => sendCancel(secure));
        secure.on('error', finish);
      });
      socket.write(sslRequestBytes());
    });
  });
}

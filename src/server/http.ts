// `hotplugd serve`: the web page and its JSON API over HTTP. Read-only (GET and HEAD only),
// on localhost unless a bearer token guards it, with a strict Content-Security-Policy; the
// live stream is server-sent events fed by the daemon's subscription (HotplugClient), from a
// cursor, so a reload loses nothing.
import { historySize } from '../history/browse.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { HotplugClient } from '../client/client.js';
import { describeError, HotplugError } from '../errors.js';
import { openHistoryDb, type HistoryDb } from '../history/db.js';
import { openFleetStore, type FleetStore } from '../fleet/store.js';
import type { Logger } from '../log.js';
import { BadRequest, device, devices, events, incidents, rates, sessions, type ApiContext } from './api.js';
import { boardEvents, boards } from './fleet-api.js';
import { ConnectionGuard, type ConnectionLimits } from './connections.js';

export interface ServeOptions {
  dbPath: string;
  controlPath: string;
  sysfsRoot: string;
  /** The built page (index.html, app.js, app.css). */
  assetsDir: string;
  /** A collected fleet database (a file or postgres:// URL): /api/boards and /api/boards/NAME/events. */
  fleet?: string | undefined;
  /** When set, every /api/ request must carry `Authorization: Bearer TOKEN`. */
  token?: string | undefined;
  /** Connection limits and timeouts (connections.ts has the defaults). */
  limits?: Partial<ConnectionLimits> | undefined;
  log: Logger;
}

const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

const digest = (text: string) => createHash('sha256').update(text).digest();

export class WebServer {
  readonly server: Server;
  #o: ServeOptions;
  #client: HotplugClient;
  #db: HistoryDb | undefined;
  #fleet: Promise<FleetStore> | undefined;
  #assets = new Map<string, { type: string; body: Buffer }>();
  #streams = new Set<AbortController>();
  readonly connections: ConnectionGuard;

  constructor(options: ServeOptions) {
    this.#o = options;
    this.#client = new HotplugClient({ controlPath: options.controlPath, dbPath: options.dbPath });
    // The page is read once: only these files are served, whatever a path asks for.
    for (const name of existsSync(options.assetsDir) ? readdirSync(options.assetsDir) : []) {
      const type = TYPES[extname(name)];
      if (type) this.#assets.set(name === 'index.html' ? '/' : `/${name}`, { type, body: readFileSync(join(options.assetsDir, name)) });
    }
    // Node checks its own header and request timeouts every second (not every 30 s); the
    // connection guard closes silent and idle connections and holds the caps.
    this.server = createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => this.#handle(req, res));
    this.connections = new ConnectionGuard(this.server, options.log, options.limits);
    const { headerTimeoutMs, idleTimeoutMs } = this.connections.limits;
    this.server.headersTimeout = headerTimeoutMs;
    this.server.requestTimeout = headerTimeoutMs + 5_000;
    this.server.keepAliveTimeout = idleTimeoutMs;
  }

  async close(): Promise<void> {
    for (const stream of this.#streams) stream.abort();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.#db?.close();
    await (await this.#fleet?.catch(() => undefined))?.close();
  }

  #fleetStore(): Promise<FleetStore> {
    const target = this.#o.fleet;
    if (target === undefined) throw new BadRequest('this server has no fleet database (hotplugd serve --fleet)');
    // Opened once, at the first request; a failure is tried again at the next.
    this.#fleet ??= openFleetStore(target, { readonly: true, onError: (error) => this.#o.log.warn({ err: error }, `serve: the fleet database connection failed: ${error.message}`) });
    return this.#fleet.catch((error: unknown) => {
      this.#fleet = undefined;
      throw error;
    });
  }

  // Opened at the first request that needs it: the daemon may create it after serve starts.
  #history(): HistoryDb {
    this.#db ??= openHistoryDb(this.#o.dbPath, { readonly: true });
    return this.#db;
  }

  #authorized(req: IncomingMessage): boolean {
    if (this.#o.token === undefined) return true;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    // Equal-length digests: the comparison takes the same time whatever was sent.
    return timingSafeEqual(digest(given), digest(this.#o.token));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [key, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(key, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.#send(res, 405, { error: 'read-only: GET and HEAD only' }, { allow: 'GET, HEAD' });
    if ((req.url ?? '').length > 4096) return this.#send(res, 414, { error: 'the URL is longer than 4096 characters' });
    const url = new URL(req.url ?? '/', 'http://serve.invalid');
    if (!url.pathname.startsWith('/api/')) {
      const asset = this.#assets.get(url.pathname);
      if (!asset) return this.#send(res, 404, { error: 'not found' });
      res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    if (!this.#authorized(req)) return this.#send(res, 401, { error: 'a bearer token is required (Authorization: Bearer TOKEN)' }, { 'www-authenticate': 'Bearer' });
    void this.#api(url, req, res).catch((error: unknown) => {
      if (error instanceof BadRequest) return this.#send(res, 400, { error: error.message });
      // No history yet (the daemon has not created it, or --db names another file).
      if (error instanceof HotplugError && error.code === 'EDB') return this.#send(res, 503, { error: `${error.message} (is the daemon running with this --db?)` });
      this.#o.log.warn({ err: error, path: url.pathname }, `serve: ${url.pathname} failed: ${describeError(error)}`);
      this.#send(res, 500, { error: describeError(error) });
    });
  }

  async #api(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = url.pathname;
    const query = url.searchParams;
    if (path === '/api/stream') return this.#stream(query, req, res);
    if (path === '/api/status') return this.#send(res, 200, await this.#status());
    if (path === '/api/boards') return this.#send(res, 200, await boards(await this.#fleetStore()));
    const board = /^\/api\/boards\/([^/]{1,128})\/events$/.exec(path);
    if (board) return this.#send(res, 200, await boardEvents(await this.#fleetStore(), decodeURIComponent(board[1]!), query));
    const ctx: ApiContext = { db: this.#history(), sysfsRoot: this.#o.sysfsRoot };
    const one = /^\/api\/devices\/(\d{1,15})$/.exec(path);
    if (one) {
      const found = device(ctx, Number(one[1]), query);
      return found ? this.#send(res, 200, found) : this.#send(res, 404, { error: `no device ${one[1]}` });
    }
    const handler = { '/api/devices': devices, '/api/events': events, '/api/sessions': sessions, '/api/incidents': incidents, '/api/rates': rates }[path];
    if (!handler) return this.#send(res, 404, { error: `no such endpoint ${path}` });
    this.#send(res, 200, handler(ctx, query));
  }

  async #status() {
    const history = existsSync(this.#o.dbPath) ? historySize(this.#history()) : { events: 0, newest: 0 };
    try {
      return { daemon: await this.#client.status({ rules: true }), history, fleet: this.#o.fleet !== undefined, connections: this.#connectionStats() };
    } catch (error) {
      return { daemon: null, error: describeError(error), history, fleet: this.#o.fleet !== undefined, connections: this.#connectionStats() };
    }
  }

  #connectionStats() {
    return { ...this.connections.stats(), streams: this.#streams.size, maxStreams: MAX_STREAMS };
  }

  async #stream(query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#streams.size >= MAX_STREAMS) return this.#send(res, 503, { error: `at most ${MAX_STREAMS} live streams at once` });
    const given = query.get('cursor') ?? req.headers['last-event-id'];
    if (given !== undefined && !/^\d{1,15}$/.test(String(given))) throw new BadRequest('cursor: a history id');
    const abort = new AbortController();
    this.#streams.add(abort);
    req.once('close', () => abort.abort());
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
    res.write('retry: 2000\n\n');
    const heartbeat = setInterval(() => res.write(': alive\n\n'), HEARTBEAT_MS);
    try {
      const subsystems = query.getAll('subsystem').filter(Boolean).slice(0, 20);
      // Incidents go out as `event: incident` messages, between the events they came among.
      const onIncident = (incident: unknown) => void res.write(`event: incident\ndata: ${JSON.stringify(incident)}\n\n`);
      for await (const record of this.#client.subscribe({ cursor: given === undefined ? undefined : Number(given), subsystems: subsystems.length ? subsystems : undefined, signal: abort.signal, onIncident })) {
        // A browser that does not read holds the stream, not our memory.
        if (!res.write(`id: ${record.id}\ndata: ${JSON.stringify(record)}\n\n`)) await once(res, 'drain', { signal: abort.signal }).catch(() => undefined);
      }
    } finally {
      clearInterval(heartbeat);
      this.#streams.delete(abort);
      res.end();
    }
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) return void res.end();
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }
}

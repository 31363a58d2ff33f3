// The live page: plain HTML, CSS and JavaScript (src/admin/page/, no build
// step, nothing from the network) served by a replica on its HTTP port
// (`meshlb serve --http-port`, `meshlb dev --http-port`), with the JSON it
// polls. The answers are AdminService's (admin-service.ts), so the page shows
// what grpcurl shows:
//   GET /                          the page (index.html, app.js, style.css)
//   GET /api/mesh                  GetMeshStatus: every cell, its leader, health and load
//   GET /api/cell?path=/eu         GetCell and ListAgents at that cell's leader
//   GET /api/dead-letters?cell=/   ListDeadLetters at that cell's leader (page_token=... for more)
//   GET /api/flow                  GetFlow at the root's leader, and the oldest QUEUED tasks homed
//                                  there with where each waits (ListTasks' location)
//   GET /metrics                   Prometheus text, when the process counts metrics
// Bounded like /metrics: loopback by default, at most 32 connections, 5 s
// timeouts; every other path is 404, every other method 405. Errors are JSON
// {code, message} with the gRPC status name and an HTTP status to match.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { status } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import {
  GetCellResponse,
  GetFlowResponse,
  GetMeshStatusResponse,
  ListAgentsResponse,
  ListDeadLettersResponse,
  ListTasksResponse,
} from '../gen/meshlb/v1/admin.js';
import { TaskState } from '../gen/meshlb/v1/task.js';
import { FLOW_OWNER } from '../flow/admission.js';
import { getFlow } from './admin-flow.js';
import { listTasks } from './admin-tasks.js';
import { toServiceError } from '../util/errors.js';
import { targetCell } from './admin-route.js';
import { listenBounded } from './http-listen.js';
import type { Admin } from './admin-service.js';
import { deadLetters } from './admin-service.js';

/** Dead letters per page on the page. */
const PAGE_DEAD_LETTERS = 50;
/** Waiting tasks the flow panel lists (the oldest QUEUED at the root). */
const PAGE_WAITING = 20;
/** The page's own deadline for an answer from the mesh. */
const API_DEADLINE_MS = 3_000;

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const HTTP_OF: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.NOT_FOUND]: 404,
  [status.FAILED_PRECONDITION]: 409,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.UNAVAILABLE]: 503,
  [status.DEADLINE_EXCEEDED]: 504,
};

export interface PageServer {
  readonly port: number;
  /** http://host:port/ */
  readonly url: string;
  close(): Promise<void>;
}

export interface PageServerOptions {
  /** Bind host (default 127.0.0.1; 0.0.0.0 in containers). */
  readonly host?: string;
  /** Serve GET /metrics from this registry too. */
  readonly registry?: Registry;
}

/** Serve the live page for the mesh as `admin`'s replica sees it, on `port` (0: any free port). */
export async function startPageServer(admin: Admin, port: number, opts: PageServerOptions = {}): Promise<PageServer> {
  const host = opts.host ?? '127.0.0.1';
  const files = pageFiles();
  const server: Server = createServer((req, res) => {
    void handle(admin, files, opts.registry, req, res).catch((err: unknown) => fail(res, err));
  });
  const l = await listenBounded(server, port, host, 32);
  return { port: l.port, url: `${l.base}/`, close: l.close };
}

/**
 * The page's files, read once (a few kilobytes that must not change under a running replica) from page/ next
 * to this module: src/admin/page in a checkout, dist/src/admin/page in a build (scripts/copy-assets.mjs, run
 * by `npm run build`, copies them there; tsc copies only what it compiles).
 */
function pageFiles(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(FILES)) {
    const url = new URL(`./page/${file}`, import.meta.url);
    try {
      files.set(file, readFileSync(url));
    } catch (err) {
      throw new Error(`the live page's ${file} is missing (${(err as Error).message}): npm run build copies it`, {
        cause: err,
      });
    }
  }
  return files;
}

async function handle(
  admin: Admin,
  files: ReadonlyMap<string, Buffer>,
  registry: Registry | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://page');
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('only GET\n');
    return;
  }
  const page = FILES[url.pathname];
  if (page) {
    res
      .writeHead(200, {
        'content-type': page.type,
        'cache-control': 'no-cache',
        // Everything the page loads is its own: no inline script, nothing from elsewhere.
        'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:",
        'x-content-type-options': 'nosniff',
      })
      .end(files.get(page.file));
    return;
  }
  const q = (name: string): string => url.searchParams.get(name) ?? '';
  switch (url.pathname) {
    case '/api/mesh': {
      const s = await admin.mesh.answer({ subtree: false, cell: '', hops: 0 }, API_DEADLINE_MS, false);
      return json(res, GetMeshStatusResponse.toJSON(s));
    }
    case '/api/cell': {
      const detail = await cellDetail(admin, q('path'));
      return json(res, { cell: GetCellResponse.toJSON(detail.cell), agents: ListAgentsResponse.toJSON(detail.agents) });
    }
    case '/api/dead-letters': {
      const req = { cell: q('cell'), kind: '', tenant: '', pageSize: PAGE_DEAD_LETTERS, pageToken: q('page_token') };
      const page = await admin.routed('listDeadLetters', req.cell, req, API_DEADLINE_MS, false, () =>
        deadLetters(admin.cell, req),
      );
      return json(res, ListDeadLettersResponse.toJSON(page));
    }
    case '/api/flow': {
      const flow = await admin.routed('getFlow', FLOW_OWNER, { cell: '' }, API_DEADLINE_MS, false, () =>
        getFlow(admin.cell),
      );
      const req = {
        cell: FLOW_OWNER,
        states: [TaskState.TASK_STATE_QUEUED],
        kind: '',
        tenant: '',
        pageSize: PAGE_WAITING,
        pageToken: '',
        newestFirst: false,
      };
      const waiting = await admin.routed('listTasks', FLOW_OWNER, req, API_DEADLINE_MS, false, () =>
        listTasks(admin.cell, req),
      );
      return json(res, { flow: GetFlowResponse.toJSON(flow), waiting: ListTasksResponse.toJSON(waiting) });
    }
    case '/metrics':
      if (registry) {
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(body);
        return;
      }
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try / or /api/mesh\n');
}

/** GetCell and ListAgents of `path` ('' = this replica's cell) at its leader. */
async function cellDetail(admin: Admin, path: string): Promise<{ cell: GetCellResponse; agents: ListAgentsResponse }> {
  const { cell, router } = admin;
  const target = targetCell(cell, path);
  const route = await router.route(target, false);
  if (route.local) return { cell: admin.getCell({ path: '' }), agents: admin.listAgents() };
  const [c, a] = await Promise.all([
    router.call(route.address, target, 'getCell', { path: '' }, API_DEADLINE_MS),
    router.call(route.address, target, 'listAgents', {}, API_DEADLINE_MS),
  ]);
  return { cell: c, agents: a };
}

function json(res: ServerResponse, body: unknown): void {
  res
    .writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(body));
}

function fail(res: ServerResponse, err: unknown): void {
  const se = toServiceError(err);
  const code = se.code ?? status.INTERNAL;
  if (res.headersSent) {
    res.end();
    return;
  }
  res
    .writeHead(HTTP_OF[code] ?? 500, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify({ code: status[code], message: se.details ?? '' }));
}

/**
 * The web UI's files, served by the admin port at `/ui` without a token (they hold no data: the
 * page asks the operator for the token and calls the API with it). A fixed set, read once: the
 * page (`/ui/`), its stylesheet (`/ui/ui.css`) and the compiled modules (`/ui/app/…js`, from
 * `dist/ui`). A request names one of them exactly or gets 404, so no path can leave the set.
 * Every answer carries a Content-Security-Policy that allows no inline script or style and no
 * other origin, and `X-Content-Type-Options: nosniff`.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { join, relative, sep } from 'node:path';
import { ErrorCode, IngressError } from '../errors.js';

/** The Content-Security-Policy of the UI's files (no inline code, nothing from elsewhere). */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

interface UiFile {
  type: string;
  body: Buffer;
}

/** Where the UI's files are: the compiled modules and the page with its stylesheet. */
export interface UiLocation {
  /** `dist/ui` of @latchkey/core: the compiled modules. */
  app: string;
  /** `ui/static` of @latchkey/core: `index.html` and `ui.css`. */
  static: string;
}

/** The UI's files inside the installed @latchkey/core (this module is `dist/ingress/…`). */
export function defaultUiLocation(): UiLocation {
  return {
    app: fileURLToPath(new URL('../ui/', import.meta.url)),
    static: fileURLToPath(new URL('../../ui/static/', import.meta.url)),
  };
}

/** Every `.js` file under `dir`, as paths relative to it with `/` separators. */
function modules(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.js'))
        out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out;
}

/** Reads the fixed file set: request path → content type and bytes. Empty when not built. */
export function loadUiFiles(where: UiLocation): Map<string, UiFile> {
  const files = new Map<string, UiFile>();
  const index = join(where.static, 'index.html');
  if (!existsSync(index) || !existsSync(join(where.app, 'main.js'))) return files;
  files.set('/ui/', { type: TYPES['.html']!, body: readFileSync(index) });
  files.set('/ui/ui.css', {
    type: TYPES['.css']!,
    body: readFileSync(join(where.static, 'ui.css')),
  });
  for (const m of modules(where.app)) {
    files.set(`/ui/app/${m}`, { type: TYPES['.js']!, body: readFileSync(join(where.app, m)) });
  }
  return files;
}

/** Whether a request target is the UI's (`/ui`, `/ui/…`, `/ui?…`): served without a token. */
export function isUiTarget(url: string): boolean {
  return url === '/ui' || url.startsWith('/ui/') || url.startsWith('/ui?');
}

/**
 * The handler of the UI's requests (targets for which {@link isUiTarget} holds). GET and HEAD
 * only (405 otherwise); `/ui` redirects to `/ui/` (so the page's relative links resolve); a path
 * outside the set is 404 `NOT_FOUND`, and so is every path when the UI is not built.
 */
export function createUiHandler(
  where: UiLocation = defaultUiLocation(),
): (req: IncomingMessage, res: ServerResponse) => void {
  let files: Map<string, UiFile> | undefined;
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new IngressError(
        405,
        ErrorCode.METHOD_NOT_ALLOWED,
        `the UI's files are read with GET or HEAD, not ${String(req.method).slice(0, 16)}`,
      );
    }
    const raw = req.url ?? '/ui';
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    if (path === '/ui') {
      res.writeHead(308, { ...HEADERS, location: '/ui/', 'content-length': 0 });
      res.end();
      return;
    }
    files ??= loadUiFiles(where);
    const file = files.get(path);
    if (!file) {
      throw new IngressError(
        404,
        ErrorCode.NOT_FOUND,
        files.size === 0
          ? 'the web UI is not built (npm run build builds it into dist/ui)'
          : `no UI file ${path.slice(0, 256)}`,
      );
    }
    res.writeHead(200, {
      ...HEADERS,
      'content-type': file.type,
      'content-length': file.body.length,
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };
}

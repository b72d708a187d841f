#!/usr/bin/env node
// The module map of docs/ARCHITECTURE.md, computed from the imports of packages/*/src/**/*.ts.
// A module is a package's directory under src/ (`core/journal`, `core/ingress`, ...); the files
// directly in src/ form the module named after the package (`core`, `redis-store`, ...).
//
//   node scripts/module-map.js            prints the map
//   node scripts/module-map.js --check    exits 1 unless docs/ARCHITECTURE.md holds it (npm run check)
//   node scripts/module-map.js --write    rewrites the block in docs/ARCHITECTURE.md
//   node scripts/module-map.js --max-lines=400
//                                         lists every source file over 400 lines; exits 1 if any
//   node scripts/module-map.js --max-lines=400 --formatted
//                                         the same, counting the lines Prettier would leave
//
// The block sits between `<!-- module-map:start -->` and `<!-- module-map:end -->`.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = join(ROOT, 'docs', 'ARCHITECTURE.md');
const START = '<!-- module-map:start -->';
const END = '<!-- module-map:end -->';

/** Every .ts file under `dir` (recursively), as absolute paths, sorted. */
function tsFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Lines of a file as `wc -l` counts them (a last line without a newline counts too). */
function lineCount(text) {
  if (text === '') return 0;
  const n = text.split('\n').length;
  return text.endsWith('\n') ? n - 1 : n;
}

/** The module a source file belongs to: `<pkg>` or `<pkg>/<first directory under src>`. */
function moduleOf(pkg, srcDir, file) {
  const parts = relative(srcDir, file).split(sep);
  return parts.length > 1 ? `${pkg}/${parts[0]}` : pkg;
}

/** The import specifiers of a file: `{ spec, typeOnly }` for static, re-export and import(). */
function importsOf(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = [];
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      let typeOnly = false;
      if (c) {
        const named = c.namedBindings;
        typeOnly =
          c.isTypeOnly ||
          (!c.name &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((el) => el.isTypeOnly));
      }
      out.push({ spec: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const named = node.exportClause;
      const typeOnly =
        node.isTypeOnly ||
        (named !== undefined &&
          ts.isNamedExports(named) &&
          named.elements.length > 0 &&
          named.elements.every((el) => el.isTypeOnly));
      out.push({ spec: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      out.push({ spec: node.arguments[0].text, typeOnly: false });
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push({ spec: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The source file a relative specifier names (`./x.js` → `./x.ts` or `./x/index.ts`). */
function resolveRelative(from, spec) {
  const base = resolve(dirname(from), spec);
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    `${base}.ts`,
    join(base.replace(/\.js$/, ''), 'index.ts'),
  ];
  return candidates.find((c) => existsSync(c));
}

/** Computes the modules, their dependencies and the file sizes. */
export function computeMap() {
  const pkgsDir = join(ROOT, 'packages');
  const modules = new Map(); // name -> { files, lines, deps: Map<name, typeOnly>, external: Set }
  const files = [];
  const get = (name) => {
    let m = modules.get(name);
    if (!m) {
      m = { files: 0, lines: 0, deps: new Map(), external: new Set() };
      modules.set(name, m);
    }
    return m;
  };
  for (const pkg of readdirSync(pkgsDir).sort()) {
    const srcDir = join(pkgsDir, pkg, 'src');
    if (!existsSync(srcDir)) continue;
    for (const file of tsFiles(srcDir)) {
      const text = readFileSync(file, 'utf8');
      const lines = lineCount(text);
      files.push({ path: relative(ROOT, file).split(sep).join('/'), lines });
      const name = moduleOf(pkg, srcDir, file);
      const mod = get(name);
      mod.files += 1;
      mod.lines += lines;
      for (const { spec, typeOnly } of importsOf(file, text)) {
        let dep;
        if (spec.startsWith('.')) {
          const target = resolveRelative(file, spec);
          if (!target) throw new Error(`${relative(ROOT, file)}: cannot resolve '${spec}'`);
          dep = moduleOf(pkg, srcDir, target);
        } else if (spec.startsWith('@latchkey/')) {
          dep = spec;
        } else {
          const bare = spec.startsWith('node:')
            ? 'node:*'
            : spec
                .split('/')
                .slice(0, spec.startsWith('@') ? 2 : 1)
                .join('/');
          mod.external.add(bare);
          continue;
        }
        if (dep === name) continue;
        // A dependency is type-only when every import of it is.
        mod.deps.set(dep, (mod.deps.get(dep) ?? true) && typeOnly);
      }
    }
  }
  return { modules, files };
}

/** The Markdown block (without the markers). */
export function renderMap({ modules, files }) {
  const fmt = (n) => n.toLocaleString('en-US');
  const rows = [...modules.entries()].sort(([a], [b]) => a.localeCompare(b));
  const out = [
    '<!-- Generated by `node scripts/module-map.js --write` from the imports of',
    '     packages/*/src; `npm run check` fails when it is out of date. -->',
    '',
    'Modules (a package directory under `src/`; `core` alone is the files directly in',
    '`packages/core/src`), what each imports from the others (*types* = type-only imports) and',
    'from outside the workspace:',
    '',
    '| module | files | lines | depends on | external |',
    '|---|---:|---:|---|---|',
  ];
  for (const [name, m] of rows) {
    const deps = [...m.deps.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([d, typeOnly]) => `\`${d}\`${typeOnly ? ' *types*' : ''}`)
      .join(', ');
    const ext = [...m.external]
      .sort()
      .map((e) => `\`${e}\``)
      .join(', ');
    out.push(`| \`${name}\` | ${m.files} | ${fmt(m.lines)} | ${deps || '—'} | ${ext || '—'} |`);
  }
  const largest = [...files].sort((a, b) => b.lines - a.lines || a.path.localeCompare(b.path))[0];
  const total = files.reduce((s, f) => s + f.lines, 0);
  out.push('');
  out.push(
    `${files.length} source files, ${fmt(total)} lines; the largest is \`${largest.path}\` ` +
      `(${fmt(largest.lines)} lines).`,
  );
  return out.join('\n');
}

function blockOf(doc) {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) return undefined;
  return { start, end, body: doc.slice(start + START.length, end).replace(/^\n|\n$/g, '') };
}

/** Line counts of the files once Prettier has formatted them (`--formatted`). */
async function formattedLines(files) {
  const prettier = await import('prettier');
  return Promise.all(
    files.map(async (f) => {
      const path = join(ROOT, f.path);
      const options = await prettier.resolveConfig(path);
      const text = await prettier.format(readFileSync(path, 'utf8'), {
        ...options,
        filepath: path,
      });
      return { path: f.path, lines: lineCount(text) };
    }),
  );
}

async function main(argv) {
  const map = computeMap();
  const maxArg = argv.find((a) => a.startsWith('--max-lines'));
  if (maxArg) {
    const max = Number(maxArg.split('=')[1] ?? 400);
    const formatted = argv.includes('--formatted');
    const files = formatted ? await formattedLines(map.files) : map.files;
    const over = files.filter((f) => f.lines > max).sort((a, b) => b.lines - a.lines);
    const what = formatted ? 'lines once formatted' : 'lines';
    for (const f of over) console.log(`${f.path}: ${f.lines} ${what} (limit ${max})`);
    if (over.length) {
      console.error(`${over.length} source file(s) over ${max} lines`);
      return 1;
    }
    console.log(`every source file is within ${max} lines`);
    return 0;
  }
  const text = renderMap(map);
  if (argv.includes('--check') || argv.includes('--write')) {
    const doc = readFileSync(DOC, 'utf8');
    const block = blockOf(doc);
    if (argv.includes('--write')) {
      if (!block) {
        console.error(`docs/ARCHITECTURE.md has no ${START} ... ${END} block to rewrite`);
        return 1;
      }
      const next = `${doc.slice(0, block.start + START.length)}\n${text}\n${doc.slice(block.end)}`;
      if (next !== doc) writeFileSync(DOC, next);
      console.log('docs/ARCHITECTURE.md: module map written');
      return 0;
    }
    if (block?.body === text) {
      console.log('docs/ARCHITECTURE.md: module map up to date');
      return 0;
    }
    console.error(
      block
        ? 'docs/ARCHITECTURE.md: the module map is out of date; ' +
            'run `node scripts/module-map.js --write` and review the diff (git diff docs/)'
        : `docs/ARCHITECTURE.md: no ${START} ... ${END} block`,
    );
    if (block) {
      const have = block.body.split('\n');
      const want = text.split('\n');
      for (let i = 0; i < Math.max(have.length, want.length); i++) {
        if (have[i] === want[i]) continue;
        console.error(`first difference at line ${i + 1} of the block:`);
        console.error(`- ${have[i] ?? '(nothing)'}`);
        console.error(`+ ${want[i] ?? '(nothing)'}`);
        break;
      }
    }
    return 1;
  }
  console.log(text);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

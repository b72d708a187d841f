/**
 * Summarises a V8 `.cpuprofile` (from `--cpu-prof`): self time by package
 * and the functions with the most self time, as shares of the busy (non-idle) time.
 *
 *   node bench/dist/profile-summary.js <file.cpuprofile> [top=30]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bench/dist/profile-summary.js <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
let total = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  // Idle time (waiting in the event loop) is left out: shares are of the time the thread was busy.
  if (byId.get(id)?.callFrame.functionName === '(idle)') {
    idle += dt;
    return;
  }
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});

/** The package (or Node internal area) a script URL belongs to. */
function area(url: string): string {
  if (url === '') return '(native/VM)';
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const pk = url.match(/\/packages\/([^/]+)\//);
  if (pk) return `@latchkey/${pk[1]}`;
  return url.replace(/^file:\/\//, '');
}

const areas = new Map<string, number>();
const fns = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const a = area(url);
  areas.set(a, (areas.get(a) ?? 0) + t);
  const key = `${functionName || '(anonymous)'}  ${a}${url ? `:${url.split('/').pop()}:${lineNumber + 1}` : ''}`;
  fns.set(key, (fns.get(key) ?? 0) + t);
}
const pct = (t: number): string => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
process.stdout.write(
  `${file}: ${(total / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle; shares are of the busy time\n\nself time by area:\n`,
);
for (const [a, t] of sorted(areas).slice(0, 20)) process.stdout.write(`  ${pct(t)}  ${a}\n`);
process.stdout.write(`\nself time by function (top ${top}):\n`);
for (const [f, t] of sorted(fns).slice(0, top)) process.stdout.write(`  ${pct(t)}  ${f}\n`);

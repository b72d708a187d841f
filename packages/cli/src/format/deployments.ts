/** Push deployments in a terminal: `deployments ls` and `deployments add/describe`. Pure. */
import type { ShownDeployment } from '../commands/deployments.js';
import { fields, table, type Style } from '../output.js';

/** `deployments ls`. */
export function formatDeploymentList(ds: readonly ShownDeployment[], style: Style): string {
  if (ds.length === 0) return 'no deployments\n';
  return table(
    ['ID', 'URI', 'SERVICES'],
    ds.map((d) => [d.id, d.uri, d.services.map((s) => s.name).join(', ')]),
    style,
  );
}

/** One deployment: its fields, then its services. */
export function formatDeployment(d: ShownDeployment, style: Style): string {
  let out = `${style.bold(d.id)}\n`;
  out += fields(
    [
      ['uri', d.uri],
      ['registered', new Date(d.createdAt).toISOString()],
      ['headers', d.headers?.join(', ')],
      ['timeout', d.timeoutMs !== undefined ? `${d.timeoutMs} ms` : undefined],
    ],
    style,
  );
  out += '\n';
  out += table(
    ['SERVICE', 'KIND', 'HANDLERS'],
    d.services.map((s) => [s.name, s.kind, s.handlers.map((h) => h.name).join(', ')]),
    style,
  );
  return out;
}

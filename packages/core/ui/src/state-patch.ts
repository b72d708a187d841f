/**
 * What the state editor sends: the difference between the state it loaded and the one the
 * operator saved. Pure.
 */

/** The patch that turns `before` into `after`: changed or new names, removed ones as null. */
export function statePatch(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const name of Object.keys(before)) if (!Object.hasOwn(after, name)) patch[name] = null;
  for (const [name, v] of Object.entries(after)) {
    if (!Object.hasOwn(before, name) || JSON.stringify(before[name]) !== JSON.stringify(v))
      patch[name] = v;
  }
  return patch;
}

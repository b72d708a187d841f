/**
 * A stand-in for the user database and the email API: JSON files in a folder
 * (`users/<id>.json`, `outbox/<id>.json`), so you can look at what happened.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignupDeps } from './signup.js';

export function fileDeps(dir: string): SignupDeps {
  const users = join(dir, 'users');
  const outbox = join(dir, 'outbox');
  return {
    async createUser(user) {
      await mkdir(users, { recursive: true });
      // Idempotent: a retried step overwrites the same file.
      await writeFile(join(users, `${user.id}.json`), JSON.stringify({ ...user, active: false }));
    },
    async activateUser(id) {
      const file = join(users, `${id}.json`);
      const user = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...user, active: true }));
    },
    async sendEmail(mail) {
      await mkdir(outbox, { recursive: true });
      const to = new URL(mail.link).searchParams.get('user') ?? 'unknown';
      await writeFile(join(outbox, `${to}.json`), JSON.stringify(mail));
    },
  };
}

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { counter, greeter, signup } from '../examples/quickstart/src/services.js';
import { deletePrefix, get, newPrefix, post, startServer } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

describe('basic calls through the HTTP ingress', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  beforeAll(async () => {
    server = await startServer(redisTarget, prefix, [greeter, counter, signup]);
  });
  afterAll(async () => {
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('calls a service handler and returns its result', async () => {
    const r = await post(server.url, '/greeter/greet', { name: 'Ada' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('Hello, Ada!');
    expect(r.headers.get('x-restate-id')).toMatch(/^inv_/);
  });

  it('runs exclusive object calls in order and keeps exact state', async () => {
    for (let i = 1; i <= 5; i++)
      expect((await post(server.url, '/counter/k1/add', 1)).body).toBe(i);
    expect((await post(server.url, '/counter/k1/get')).body).toBe(5);
  });

  it('runs a workflow once per id and answers its output by invocation id', async () => {
    const first = await post(server.url, '/signup/w1/run/send', 'w1@example.com');
    expect(first.status).toBe(202);
    const again = await post(server.url, '/signup/w1/run/send', 'w1@example.com');
    expect(again.body).toEqual({
      invocationId: (first.body as { invocationId: string }).invocationId,
      status: 'PreviouslyAccepted',
    });
    const id = (first.body as { invocationId: string }).invocationId;
    const out = await get(server.url, `/restate/invocation/${id}/attach`);
    expect(out.status).toBe(200);
    expect(out.body).toMatchObject({ email: 'w1@example.com' });
    const call = await post(server.url, '/signup/w1/run', 'w1@example.com');
    expect(call.status).toBe(409);
  });
});

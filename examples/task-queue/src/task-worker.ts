/**
 * The `taskWorker` service: runs one task per invocation. Each kind of task is
 * a plain async function; it runs as a durable step, so a task whose worker
 * dies is retried on another worker and its recorded result is the one every
 * caller sees.
 */
import { TerminalError, service, type Context } from '@latchkey/core';

export interface Task {
  /** Also the idempotency key: submitting the same id twice runs the task once. */
  id: string;
  kind: string;
  payload: unknown;
}

/** What a task kind does with its payload. */
export type TaskHandlers = Record<string, (payload: unknown, task: Task) => Promise<unknown>>;

export function taskWorker(kinds: TaskHandlers) {
  return service({
    name: 'taskWorker',
    handlers: {
      process: async (ctx: Context, task: Task) => {
        const work = kinds[task.kind];
        if (!work) throw new TerminalError(`unknown task kind '${task.kind}'`, { errorCode: 400 });
        const output = await ctx.run(task.kind, () => work(task.payload, task));
        return { taskId: task.id, output };
      },
    },
  });
}

/**
 * The submitting side of the task queue, over the HTTP ingress (Restate's
 * protocol, so any process that can reach the ingress can use it):
 *
 * - `submit(task, { delay })` sends the task with `idempotency-key: task.id`,
 *   optionally delayed (a durable timer), and returns at once;
 * - `result(taskId)` waits for the task's result — from the process that
 *   submitted it or any other one: the task id is all it needs.
 */
import type { Task } from './task-worker.js';

export interface Submitted {
  invocationId: string;
  /** `PreviouslyAccepted` when a task with this id was submitted before. */
  status: 'Accepted' | 'PreviouslyAccepted';
  /** Waits for this task's result. */
  result<T = unknown>(): Promise<{ taskId: string; output: T }>;
}

export class TaskQueue {
  private readonly ingress: string;

  constructor(ingress: string) {
    this.ingress = ingress.replace(/\/$/, '');
  }

  async submit(task: Task, opts: { delayMs?: number } = {}): Promise<Submitted> {
    const delay = opts.delayMs ? `?delay=${opts.delayMs}ms` : '';
    const res = await fetch(`${this.ingress}/taskWorker/process/send${delay}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': task.id },
      body: JSON.stringify(task),
    });
    if (res.status !== 202)
      throw new Error(`submit ${task.id}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { invocationId: string; status: Submitted['status'] };
    return { ...body, result: <T>() => this.result<T>(task.id) };
  }

  /** Attaches to the task by its idempotency key and returns its result (throws its failure). */
  async result<T = unknown>(taskId: string): Promise<{ taskId: string; output: T }> {
    const res = await fetch(
      `${this.ingress}/restate/invocation/taskWorker/process/${encodeURIComponent(taskId)}/attach`,
    );
    const text = await res.text();
    if (!res.ok) throw new Error(`task ${taskId}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as { taskId: string; output: T };
  }
}

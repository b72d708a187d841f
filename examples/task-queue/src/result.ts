/**
 * Prints a task's result from a process that did not submit it.
 *
 *   node examples/task-queue/dist/result.js <taskId>    (INGRESS_URL, default http://127.0.0.1:8080)
 */
import { TaskQueue } from './queue.js';

const [taskId] = process.argv.slice(2);
if (!taskId) {
  console.error('usage: result.js <taskId>');
  process.exit(2);
}
const queue = new TaskQueue(process.env['INGRESS_URL'] ?? 'http://127.0.0.1:8080');
console.log(JSON.stringify(await queue.result(taskId)));

import type { Redis } from 'ioredis';

/**
 * Sends the commands a connection issues within one turn of the event loop in one socket write.
 *
 * ioredis writes every command with its own `socket.write`: a system call each, and on loopback
 * the kernel delivers the bytes to Redis inside that call, so at high concurrency the writes
 * dominate the process's CPU. Corking the socket at a turn's first command and uncorking it in
 * the turn's check phase (`setImmediate`) hands the turn's commands to the kernel in one `writev`,
 * and Redis reads them in one go. This is what ioredis's `enableAutoPipelining` aims at too, but
 * that builds a pipeline object per batch and measured slower here (bench/README.md). Replies,
 * ordering and error handling are ioredis's own: only the moment of the write changes.
 */
export function coalesceWrites(redis: Redis): Redis {
  const send = redis.sendCommand.bind(redis);
  let corked = false;
  redis.sendCommand = (command, stream) => {
    const socket = redis.stream;
    if (!corked && stream === undefined && redis.status === 'ready' && socket?.writable) {
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send(command, stream);
  };
  return redis;
}

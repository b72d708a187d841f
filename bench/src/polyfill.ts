/**
 * `Promise.withResolvers` (ES2024) for Node 20, which lacks it; Restate's
 * SDK 1.17 calls it. Imported before the SDK.
 */
interface WithResolvers {
  withResolvers?<T>(): {
    promise: Promise<T>;
    resolve: (v: T | PromiseLike<T>) => void;
    reject: (e?: unknown) => void;
  };
}

const P = Promise as unknown as WithResolvers;
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export {};

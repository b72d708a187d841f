/**
 * Live events of the in-memory store: a status event whenever a record's status changes (its
 * `status` becomes an accessor once the record is tracked, so no assignment can forget to tell),
 * a journal event after each commit of entries. Delivered in a microtask, never inside the
 * change, as a real store delivers them after its write.
 */
import type { EventFilter, EventWatch, InvocationEvent, StoreEvent } from '../../store/events.js';
import type { InvocationStatus } from '../../store/invocation.js';
import type { Rec } from './records.js';

interface Registration {
  filter: EventFilter;
  listener: (e: StoreEvent) => void;
}

export class MemoryEvents {
  private readonly regs = new Set<Registration>();

  /** Registers a listener (see `Store.watchEvents`); it hears events at once. */
  watch(filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch {
    const reg: Registration = { filter: { ...filter }, listener };
    this.regs.add(reg);
    return { ready: Promise.resolve(), close: () => void this.regs.delete(reg) };
  }

  /** Starts telling a new record's status changes, its current status first. */
  track(rec: Rec): void {
    let status = rec.status;
    Object.defineProperty(rec, 'status', {
      enumerable: true,
      configurable: true,
      get: () => status,
      set: (s: InvocationStatus) => {
        if (s === status) return;
        status = s;
        this.status(rec);
      },
    });
    this.status(rec);
  }

  /** Tells that a record's journal grew. */
  journal(rec: Rec): void {
    const e: InvocationEvent = {
      type: 'journal',
      id: rec.id,
      length: rec.journal.length,
      service: rec.target.service,
      at: Date.now(),
    };
    this.emit(e);
  }

  private status(rec: Rec): void {
    const t = rec.target;
    this.emit({
      type: 'status',
      id: rec.id,
      status: rec.status,
      service: t.service,
      handler: t.handler,
      ...(t.key !== undefined ? { key: t.key } : {}),
      at: Date.now(),
    });
  }

  private emit(e: InvocationEvent): void {
    if (this.regs.size === 0) return;
    queueMicrotask(() => {
      for (const r of [...this.regs]) {
        const f = r.filter;
        if (
          (f.id === undefined || f.id === e.id) &&
          (f.service === undefined || f.service === e.service)
        )
          r.listener(e);
      }
    });
  }
}

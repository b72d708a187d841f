/**
 * Counters and histograms whose hot path is a map lookup and an array increment, exposed through a
 * `prom-client` registry (which formats and serves them) as ordinary counter and histogram
 * metrics. Measured on the executor's path (`bench/dist/telemetry-cost.js`, and an executor loop),
 * prom-client's own `labels().observe()` (label validation, a label hash and objects per call)
 * made an attempt cost 35-50 µs more, most of it garbage collection under load; these add well
 * under 1 µs.
 */
import type { Registry } from 'prom-client';

/** What prom-client's registry reads from a metric (its `get()`). */
interface Exposed {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** One series: its label values, and its value (counter) or buckets, sum and count (histogram). */
interface Series {
  labels: Record<string, string>;
  value: number;
  buckets: Float64Array | undefined;
  sum: number;
}

/**
 * A family of series by label values, kept in nested maps (no key string built per call), and
 * registered with a prom-client registry under `name`.
 */
abstract class Family {
  private readonly root = new Map<string, unknown>();
  private readonly all: Series[] = [];
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  abstract readonly type: 'counter' | 'histogram';
  protected readonly labelNames: readonly string[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    registry.registerMetric(this as never);
  }

  /**
   * The series of these label values (given in the order of the label names, at most three),
   * made on first use.
   */
  protected series(a = '', b = '', c = ''): Series {
    const n = this.labelNames.length;
    let m = this.root;
    if (n > 1) m = this.level(m, a);
    if (n > 2) m = this.level(m, b);
    const last = n === 3 ? c : n === 2 ? b : a;
    let s = m.get(last) as Series | undefined;
    if (!s) {
      const labels: Record<string, string> = {};
      const values = [a, b, c];
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      s = { labels, value: 0, buckets: this.newBuckets(), sum: 0 };
      m.set(last, s);
      this.all.push(s);
    }
    return s;
  }

  private level(m: Map<string, unknown>, k: string): Map<string, unknown> {
    let next = m.get(k) as Map<string, unknown> | undefined;
    if (!next) m.set(k, (next = new Map()));
    return next;
  }

  protected abstract newBuckets(): Float64Array | undefined;
  protected abstract expose(s: Series, out: Exposed[]): void;

  /** prom-client's read of the metric at scrape time. */
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    values: Exposed[];
    aggregator: 'sum';
  }> {
    const values: Exposed[] = [];
    for (const s of this.all) this.expose(s, values);
    const { name, help, type, aggregator } = this;
    return Promise.resolve({ name, help, type, values, aggregator });
  }

  reset(): void {
    for (const s of this.all) {
      s.value = 0;
      s.sum = 0;
      s.buckets?.fill(0);
    }
  }
}

/** A counter family (`<name>` should end in `_total`). */
export class FastCounter extends Family {
  readonly type = 'counter' as const;

  /** Adds 1 to the series of label values `a`, `b`, `c` (as many as the labels). */
  inc(a?: string, b?: string, c?: string): void {
    this.series(a, b, c).value += 1;
  }

  /** Adds `n` to the series of one label value. */
  add(a: string, n: number): void {
    this.series(a).value += n;
  }

  protected newBuckets(): undefined {
    return undefined;
  }

  protected expose(s: Series, out: Exposed[]): void {
    out.push({ labels: s.labels, value: s.value });
  }
}

/** A histogram family with fixed upper bounds (plus `+Inf`). */
export class FastHistogram extends Family {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    bounds: readonly number[],
  ) {
    super(registry, name, help, labelNames);
    this.bounds = bounds;
  }

  /** Observes `v` in the series of label values `a`, `b`, `c` (as many as the labels). */
  observe(v: number, a?: string, b?: string, c?: string): void {
    const s = this.series(a, b, c);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    s.buckets![i]! += 1;
    s.value += 1;
    s.sum += v;
  }

  protected newBuckets(): Float64Array {
    return new Float64Array(this.bounds.length + 1);
  }

  protected expose(s: Series, out: Exposed[]): void {
    const bucket = `${this.name}_bucket`;
    let cumulative = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      cumulative += s.buckets![i]!;
      const le = i < this.bounds.length ? this.bounds[i]! : '+Inf';
      out.push({ labels: { ...s.labels, le }, value: cumulative, metricName: bucket });
    }
    out.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
    out.push({ labels: s.labels, value: s.value, metricName: `${this.name}_count` });
  }
}

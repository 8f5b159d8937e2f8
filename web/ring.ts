// A fixed-capacity buffer that keeps the newest `capacity` items and drops the oldest.
export class Ring<T> {
  readonly #items: (T | undefined)[];
  #start = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring capacity ${capacity}`);
    }
    this.#items = new Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends; returns the evicted item when the ring was full. */
  push(item: T): T | undefined {
    if (this.#size < this.capacity) {
      this.#items[(this.#start + this.#size) % this.capacity] = item;
      this.#size++;
      return undefined;
    }
    const evicted = this.#items[this.#start];
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.capacity;
    return evicted;
  }

  /** Item `i` in insertion order, 0 = oldest kept. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#size) return undefined;
    return this.#items[(this.#start + i) % this.capacity];
  }

  /** Replaces item `i` (0 = oldest kept) in place. */
  set(i: number, item: T): void {
    if (i < 0 || i >= this.#size) throw new RangeError(`ring index ${i} of ${this.#size}`);
    this.#items[(this.#start + i) % this.capacity] = item;
  }

  last(): T | undefined {
    return this.at(this.#size - 1);
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#size; i++) out.push(this.at(i) as T);
    return out;
  }
}

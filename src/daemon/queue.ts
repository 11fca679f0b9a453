// A bounded FIFO between the kernel socket and the event handler. When it fills,
// the producer is told to stop (we stop reading the socket); when it has drained to
// half, to start again. Memory therefore never grows with the size of a storm.
export interface QueueHooks<T> {
  /** Handles one item; must not throw (the daemon wraps its handler). */
  handle(item: T): void;
  onFull(): void;
  onRoom(): void;
  /** The queue became empty after handling at least one item. */
  onIdle?(): void;
}

export class EventQueue<T> {
  readonly capacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;
  #full = false;
  #scheduled = false;
  #hooks: QueueHooks<T>;
  #chunk: number;

  constructor(capacity: number, hooks: QueueHooks<T>, chunk = 1024) {
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
    this.#hooks = hooks;
    this.#chunk = chunk;
  }

  get length(): number {
    return this.#length;
  }

  /**
   * Adds an item. Items pushed while full are still kept (a coldplug or resync batch,
   * or the rest of a socket read), in a ring that grows; the producer has been told to stop.
   */
  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
    if (!this.#full && this.#length >= this.capacity) {
      this.#full = true;
      this.#hooks.onFull();
    }
    this.#schedule();
  }

  /** Handles every queued item now, synchronously (used at shutdown). */
  drain(): void {
    while (this.#length > 0) this.#handleSome(this.#length);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: socket reads get their turn between chunks.
    setImmediate(() => {
      this.#scheduled = false;
      this.#handleSome(this.#chunk);
      if (this.#length > 0) this.#schedule();
    });
  }

  #handleSome(max: number): void {
    const handled = Math.min(max, this.#length);
    for (let i = 0; i < handled; i++) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#items.length;
      this.#length--;
      this.#hooks.handle(item);
    }
    if (this.#full && this.#length <= this.capacity / 2) {
      this.#full = false;
      this.#hooks.onRoom();
    }
    if (handled > 0 && this.#length === 0) this.#hooks.onIdle?.();
  }

  #grow(): void {
    const items = new Array<T | undefined>(Math.max(16, this.#items.length * 2));
    for (let i = 0; i < this.#length; i++) items[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = items;
    this.#head = 0;
  }
}

import type { Slot } from './gpu.js';

/** Scheduled retries held at once; past it, consumption pauses. */
export const MAX_DELAYED = 10_000;

/** What the pool pauses while every slot is spoken for: the transport's consumption. */
export interface Intake {
  pause(): void;
  resume(): void;
}

/**
 * The runner's slots and its flow control. A task that waits for a slot or holds one is `busy`;
 * a scheduled retry waiting out its delay is `delayed` and holds no slot. When as many tasks
 * are busy as there are slots (or too many are delayed), intake pauses; it resumes as soon as
 * one frees up. Slots go to waiters first come, first served.
 */
export class SlotPool {
  readonly #size: number;
  readonly #free: Slot[];
  readonly #waiters: ((slot: Slot | undefined) => void)[] = [];
  readonly #intake: Intake;
  readonly #maxDelayed: number;
  #busy = 0;
  #delayed = 0;
  #paused = false;
  #closed = false;

  constructor(slots: readonly Slot[], intake: Intake, maxDelayed = MAX_DELAYED) {
    if (slots.length === 0) throw new Error('a runner needs at least one slot');
    this.#size = slots.length;
    this.#free = [...slots];
    this.#intake = intake;
    this.#maxDelayed = maxDelayed;
  }

  get size(): number {
    return this.#size;
  }

  get busy(): number {
    return this.#busy;
  }

  get delayed(): number {
    return this.#delayed;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** A task now waits for a slot (or holds one). */
  enter(): void {
    this.#busy++;
    this.#flow();
  }

  /** A task no longer waits for nor holds a slot. */
  leave(): void {
    this.#busy--;
    this.#flow();
  }

  /** A task waits out a retry delay, without a slot. */
  delay(): void {
    this.#delayed++;
    this.#flow();
  }

  /** Its delay is over (it then enters, or is dropped when stopping). */
  undelay(): void {
    this.#delayed--;
    this.#flow();
  }

  /** A free slot, or the next one released; undefined once closed. */
  acquire(): Promise<Slot | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const slot = this.#free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(slot: Slot): void {
    const next = this.#waiters.shift();
    if (next !== undefined && !this.#closed) next(slot);
    else this.#free.push(slot);
  }

  /** Stopping: intake stays paused, no slot is handed out again, and every waiter gets undefined. */
  close(): void {
    this.#closed = true;
    if (!this.#paused) {
      this.#paused = true;
      this.#intake.pause();
    }
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  #flow(): void {
    if (this.#closed) return;
    const full = this.#busy >= this.#size || this.#delayed >= this.#maxDelayed;
    if (full && !this.#paused) {
      this.#paused = true;
      this.#intake.pause();
    } else if (!full && this.#paused) {
      this.#paused = false;
      this.#intake.resume();
    }
  }
}

// Detects jumps in the kernel's uevent sequence numbers. The counter is global to
// the kernel, so a gap means events we did not receive: lost to a buffer overflow,
// or sent only to listeners in other network namespaces.
export interface SeqnumGap {
  /** The last sequence number seen before the gap. */
  after: number;
  /** The first sequence number seen after it. */
  before: number;
  missed: number;
}

export class SeqnumTracker {
  #last: number | undefined;

  /** Returns the gap that ends at `seqnum`, if any. */
  observe(seqnum: number | undefined): SeqnumGap | undefined {
    if (seqnum === undefined) return undefined;
    const last = this.#last;
    this.#last = seqnum;
    if (last === undefined || seqnum <= last + 1) return undefined;
    return { after: last, before: seqnum, missed: seqnum - last - 1 };
  }
}

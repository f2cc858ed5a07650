// The read-only, indexed list of examples that batching and the trainer read: a plain array is
// one, and so is a packed store's view (PackedExamples.list), which makes each element on demand
// instead of holding an object per example.

/** Examples by index: `at(i)` for 0 <= i < length (undefined outside, as for an array). */
export interface ExampleList<T> {
  readonly length: number;
  at(index: number): T | undefined;
}

/** Element i of a list, or a RangeError naming the index when it has none. */
export function exampleAt<T>(list: ExampleList<T>, index: number): T {
  const item = Number.isInteger(index) && index >= 0 && index < list.length ? list.at(index) : undefined;
  if (item === undefined) throw new RangeError(`example ${index} is not among the ${list.length} listed`);
  return item;
}

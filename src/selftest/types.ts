import type { Gpu } from '../gpu';

/** One in-browser (and in-Node) check of a kernel against its plain-TypeScript reference. */
export interface SelfTestCase {
  name: string;
  /** The bound the result must stay within. */
  tol: number;
  /** Runs the kernel on random inputs and returns maxRelError against the reference. */
  run(gpu: Gpu): Promise<number>;
}

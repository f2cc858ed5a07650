// The transpose cases every matmul kernel test runs, and their test names.
export const TRANSPOSES: ReadonlyArray<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

export const transposeName = (t: readonly [boolean, boolean]): string => `${t[0] ? 'Aᵀ' : 'A'}·${t[1] ? 'Bᵀ' : 'B'}`;

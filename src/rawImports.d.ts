// Files imported as text: WGSL shaders and the cluster handoff's TRL script. Vite's `?raw` in the
// app and tests, a Node loader hook (scripts/wgsl-loader.mjs) for the CLI and benchmarks.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}

declare module '*.py?raw' {
  const source: string;
  export default source;
}

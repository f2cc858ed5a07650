// WGSL files are imported as text: Vite's `?raw` in the app and tests, a Node loader hook
// (scripts/wgsl-loader.mjs) for the CLI and benchmarks.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}

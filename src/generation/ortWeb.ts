/**
 * onnxruntime-web for the training worker: the WASM-only build, with its .wasm served from our
 * own origin (Vite emits it as a hashed asset and the service worker precaches it with the app
 * shell, so the ONNX pane works offline), never from a CDN. The bundled build carries its
 * Emscripten glue inside, so the .wasm is the only extra file. Loaded on first use only: it is
 * 14 MB of WebAssembly that panes on our own engine never need.
 */
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import type { OrtModule } from './onnxGeneration';

let loaded: Promise<OrtModule> | null = null;

export function loadOrtWeb(): Promise<OrtModule> {
  loaded ??= import('onnxruntime-web/wasm').then((ort) => {
    // An explicit path: in dev, Vite pre-bundles the package and its import.meta.url-relative
    // lookup would point at a folder without the .wasm.
    ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, self.location.href).href };
    // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page; we run in a worker already.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    ort.env.wasm.proxy = false;
    return ort as unknown as OrtModule;
  });
  loaded.catch(() => {
    loaded = null;
  });
  return loaded;
}

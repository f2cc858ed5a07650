import { useCallback, useEffect, useReducer, useRef } from 'react';
import type { SelfTestResult, SelfTestSummary } from '../selftest';
import type { GpuReport, PlannedCase, UnavailableReason, WorkerEvent, WorkerRequest } from '../worker/protocol';

export type GpuState =
  | { status: 'checking' }
  | { status: 'ready'; report: GpuReport }
  | { status: 'unavailable'; reason: UnavailableReason; message: string }
  | { status: 'error'; message: string };

export interface SelfTestState {
  status: 'idle' | 'running' | 'done' | 'error';
  cases: PlannedCase[];
  results: (SelfTestResult | undefined)[];
  current: number | null;
  summary: SelfTestSummary | null;
  message: string | null;
}

export interface WorkerState {
  gpu: GpuState;
  selfTest: SelfTestState;
  /** Set when the device was lost after it was ready: the page offers a reload. */
  lostMessage: string | null;
}

type Action = WorkerEvent | { type: 'selftest-requested' } | { type: 'no-webgpu-on-page' } | { type: 'worker-crashed'; message: string };

const initialSelfTest: SelfTestState = { status: 'idle', cases: [], results: [], current: null, summary: null, message: null };

const initialState: WorkerState = { gpu: { status: 'checking' }, selfTest: initialSelfTest, lostMessage: null };

function reduce(state: WorkerState, action: Action): WorkerState {
  const st = state.selfTest;
  switch (action.type) {
    case 'no-webgpu-on-page':
      return { ...state, gpu: { status: 'unavailable', reason: 'no-webgpu', message: 'navigator.gpu is missing on this page.' } };
    case 'ready':
      return { ...state, gpu: { status: 'ready', report: action.report } };
    case 'unavailable':
      return { ...state, gpu: { status: 'unavailable', reason: action.reason, message: action.message } };
    case 'selftest-requested':
      return { ...state, selfTest: { ...initialSelfTest, status: 'running' } };
    case 'selftest-plan':
      return { ...state, selfTest: { ...st, cases: action.cases, results: action.cases.map(() => undefined) } };
    case 'selftest-case-start':
      return { ...state, selfTest: { ...st, current: action.index } };
    case 'selftest-case-result': {
      const results = st.results.slice();
      results[action.index] = action.result;
      return { ...state, selfTest: { ...st, results } };
    }
    case 'selftest-done':
      return { ...state, selfTest: { ...st, status: 'done', current: null, summary: action.summary } };
    case 'device-lost':
      return {
        ...state,
        lostMessage: action.message,
        selfTest: st.status === 'running' ? { ...st, status: 'error', current: null, message: action.message } : st,
      };
    case 'error':
    case 'worker-crashed':
      if (state.gpu.status === 'checking') return { ...state, gpu: { status: 'error', message: action.message } };
      return { ...state, selfTest: { ...st, status: 'error', current: null, message: action.message } };
  }
}

/** Starts the GPU worker, probes the adapter, and exposes the self-test as state plus one action. */
export function useGpuWorker(): { state: WorkerState; runSelfTest: () => void } {
  const [state, dispatch] = useReducer(reduce, initialState);
  const worker = useRef<Worker | null>(null);

  useEffect(() => {
    // Checked here too: without WebGPU on the page there is no point starting a worker.
    if (!('gpu' in navigator)) {
      dispatch({ type: 'no-webgpu-on-page' });
      return;
    }
    const w = new Worker(new URL('../worker/selftest.worker.ts', import.meta.url), { type: 'module', name: 'whittle-gpu' });
    w.onmessage = (ev: MessageEvent<WorkerEvent>) => dispatch(ev.data);
    w.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      dispatch({ type: 'worker-crashed', message: `The GPU worker failed: ${ev.message || 'it could not be loaded'}` });
    };
    w.postMessage({ type: 'probe' } satisfies WorkerRequest);
    worker.current = w;
    return () => {
      w.terminate();
      worker.current = null;
    };
  }, []);

  const runSelfTest = useCallback(() => {
    if (!worker.current) return;
    dispatch({ type: 'selftest-requested' });
    worker.current.postMessage({ type: 'run-selftest' } satisfies WorkerRequest);
  }, []);

  return { state, runSelfTest };
}

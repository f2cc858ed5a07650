// The engine hooks of src/ui/engine over a store a test makes: pages reach the engine only
// through these hooks, so a fake client behind a real EngineStore drives them. Use from vi.mock:
//   const engine = vi.hoisted(() => ({ store: null as EngineStore | null }));
//   vi.mock(PATH, async (importOriginal) => (await import('../engineMock')).engineModuleOver(importOriginal, engine));
import { useSyncExternalStore } from 'react';
import type { EngineStore } from '../../src/ui/engine';

type EngineModule = typeof import('../../src/ui/engine');

export async function engineModuleOver(importOriginal: () => Promise<unknown>, engine: { store: EngineStore | null }): Promise<EngineModule> {
  const real = (await importOriginal()) as EngineModule;
  const useEngineStore = () => engine.store!;
  return {
    ...real,
    useEngineStore,
    useClient: () => useEngineStore().client,
    useEngine: () => {
      const s = useEngineStore();
      return useSyncExternalStore(s.subscribe, s.getSnapshot, s.getSnapshot);
    },
  };
}

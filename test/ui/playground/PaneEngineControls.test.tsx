// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';

import type { PickedAdapter } from '../../../src/ui/playground/adapterFiles';
import { AdapterPicker, EngineSelect, type PaneEngine } from '../../../src/ui/playground/PaneEngineControls';

afterEach(cleanup);

function Harness() {
  const [engine, setEngine] = useState<PaneEngine>('whittle');
  const [adapter, setAdapter] = useState<PickedAdapter | null>(null);
  return (
    <>
      <EngineSelect id="e" value={engine} onChange={setEngine} />
      <AdapterPicker idPrefix="a" value={adapter} onChange={setAdapter} />
      <output data-testid="state">{`${engine}|${adapter ? JSON.stringify(adapter.config) : 'none'}`}</output>
    </>
  );
}

function pick(input: HTMLElement, files: File[]): void {
  Object.defineProperty(input, 'files', { value: files, configurable: true });
  fireEvent.change(input);
}

describe('playground pane controls', () => {
  it('switches the engine by its labelled select', () => {
    render(<Harness />);
    const select = screen.getByLabelText('Engine');
    expect([...(select as HTMLSelectElement).options].map((o) => o.text)).toEqual(['Whittle (WebGPU)', 'ONNX Runtime Web']);
    fireEvent.change(select, { target: { value: 'onnxruntime' } });
    expect(screen.getByTestId('state').textContent).toBe('onnxruntime|none');
  });

  it('takes the two adapter files, and shows what is wrong with a bad pick as text', async () => {
    render(<Harness />);
    const input = screen.getByLabelText('adapter_config.json and adapter_model.safetensors');
    pick(input, [new File(['{"r": 8, "target_modules": ["q_proj"], "note": "<b>x</b>"}'], 'adapter_config.json'), new File([new Uint8Array(8)], 'adapter_model.safetensors')]);
    await waitFor(() => expect(screen.getByTestId('state').textContent).toContain('"r":8'));
    expect(screen.getByTestId('pane-adapter-name').textContent).toBe('adapter files');
    expect(screen.getByRole('group', { name: 'Adapter files' }).textContent).toContain('LoRA r 8 · 1 module');

    pick(input, [new File(['{"r": 8'], 'adapter_config.json')]);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('adapter_model.safetensors is missing');
    expect(screen.getByTestId('state').textContent).toBe('whittle|none');
    expect(document.querySelector('b')).toBeNull();
  });
});

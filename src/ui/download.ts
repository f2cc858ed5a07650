// Saving files the app made (adapters, results files) through a temporary object URL.
import { strToU8, zipSync } from 'fflate';
import type { RequestResult } from '../worker/trainingProtocol';

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked later: Chromium reads the URL after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A PEFT adapter as one zip: adapter_model.safetensors and adapter_config.json, as PEFT saves them. */
export function peftZip(adapter: RequestResult<'get-adapter'>): Blob {
  const zip = zipSync(
    {
      'adapter_model.safetensors': adapter.adapterModel,
      'adapter_config.json': strToU8(JSON.stringify(adapter.adapterConfig, null, 2) + '\n'),
    },
    { level: 0 },
  );
  return new Blob([zip], { type: 'application/zip' });
}

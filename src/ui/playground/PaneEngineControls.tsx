// The per-pane controls the playground adds beside the model choice: which engine runs the pane
// (our WebGPU engine, or the model exported to ONNX and run by ONNX Runtime Web), and for an
// "Imported adapter" pane, the PEFT adapter files.
import { Fragment, useEffect, useRef, useState } from 'react';
import { errorText } from '../engine';
import { readPickedAdapter, type PickedAdapter } from './adapterFiles';
import './playground.css';

export type PaneEngine = 'whittle' | 'onnxruntime';

export const ENGINE_LABELS: Record<PaneEngine, string> = {
  whittle: 'Whittle (WebGPU)',
  onnxruntime: 'ONNX Runtime Web',
};

export function EngineSelect({ id, value, onChange, disabled }: { id: string; value: PaneEngine; onChange: (e: PaneEngine) => void; disabled?: boolean }) {
  return (
    <label className="pane-engine" htmlFor={id}>
      <span className="label small">Engine</span>
      <select
        id={id}
        value={value}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value as PaneEngine)}
        data-testid="pane-engine"
        title="ONNX Runtime Web runs the model with the adapter merged in, exported to ONNX (f32, WebAssembly on the CPU)"
      >
        {(Object.keys(ENGINE_LABELS) as PaneEngine[]).map((k) => (
          <option key={k} value={k}>
            {ENGINE_LABELS[k]}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Picks a PEFT adapter: a folder, or adapter_config.json + adapter_model.safetensors. */
export function AdapterPicker({ idPrefix, value, onChange, disabled }: { idPrefix: string; value: PickedAdapter | null; onChange: (a: PickedAdapter | null) => void; disabled?: boolean }) {
  const [error, setError] = useState<string | null>(null);
  const folder = useRef<HTMLInputElement>(null);
  useEffect(() => {
    // React has no prop for webkitdirectory; set it on the element.
    if (folder.current) folder.current.webkitdirectory = true;
  }, []);
  const pick = async (list: FileList | null) => {
    if (!list || list.length === 0) return;
    try {
      onChange(await readPickedAdapter([...list]));
      setError(null);
    } catch (e) {
      onChange(null);
      setError(errorText(e));
    }
  };
  return (
    <div className="adapter-picker" role="group" aria-label="Adapter files">
      <p className="adapter-info small" title={value ? `${value.summary ? `${value.summary} · ` : ''}${value.name}` : undefined}>
        {value?.summary && <span>{value.summary} · </span>}
        <span className={value ? 'muted' : undefined} data-testid="pane-adapter-name">
          {value ? value.name : 'No adapter chosen'}
        </span>
      </p>
      {(['files', 'folder'] as const).map((kind) => (
        <Fragment key={kind}>
          <label className="button small" htmlFor={`${idPrefix}-${kind}`}>
            {kind === 'files' ? 'Files…' : 'Folder…'}
          </label>
          <input
            id={`${idPrefix}-${kind}`}
            ref={kind === 'folder' ? folder : undefined}
            className="visually-hidden"
            type="file"
            {...(kind === 'files' ? { multiple: true, accept: '.json,.safetensors' } : {})}
            disabled={disabled}
            aria-label={kind === 'files' ? 'adapter_config.json and adapter_model.safetensors' : 'Adapter folder'}
            onChange={(e) => {
              void pick(e.target.files);
              e.target.value = '';
            }}
            data-testid={`pane-adapter-${kind}`}
          />
        </Fragment>
      ))}
      {error && (
        <p className="form-error small" role="alert" data-testid="pane-adapter-error">
          {error}
        </p>
      )}
    </div>
  );
}

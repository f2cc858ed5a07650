// Choosing the base model: the embedded one (when the app ships it), a Hugging Face repo, a local
// folder (picker or drag and drop), or a model used before.
import { useEffect, useId, useRef, useState, type DragEvent } from 'react';
import type { ModelInfo } from '../../worker/trainingProtocol';
import { errorText, useClient } from '../engine';
import { formatCompact, formatCount } from '../format';
import { modelId, rememberModel, useKnownModels } from '../modelRegistry';
import { useDropZone } from '../useDropZone';
import { FormError } from './FormError';
import { HubModels } from './HubModels';

export type ModelTab = 'embedded' | 'recent' | 'hub' | 'local';

/** Files a model folder needs; others (README, .git, other weight formats) are not copied. */
const MODEL_FILE = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|chat_template\.(json|jinja)|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json)$/;

export function ModelSummary({ info }: { info: ModelInfo }) {
  const s = info.summary;
  return (
    <dl className="kv model-summary" data-testid="model-summary">
      <dt>Model</dt>
      <dd>
        <strong>{info.source.name}</strong>
        <span className="hint">{info.source.kind === 'hub' ? `Hugging Face · revision ${info.source.revision}` : info.source.kind === 'local' ? 'local folder, copied into browser storage' : 'embedded'}</span>
      </dd>
      <dt>Architecture</dt>
      <dd>
        {s.architecture} <span className="muted">({s.family})</span>
      </dd>
      <dt>Parameters</dt>
      <dd>{formatCompact(s.parameters)}</dd>
      <dt>Shape</dt>
      <dd>
        {s.layers} layers · hidden {formatCount(s.hidden)} · {s.heads} heads ({s.kvHeads} KV)
      </dd>
      <dt>Vocabulary / context</dt>
      <dd>
        {formatCount(s.vocabSize)} tokens · {formatCount(s.maxPositions)} positions
      </dd>
      <dt>Checkpoint dtype</dt>
      <dd>{s.torchDtype ?? 'not stated'}</dd>
      <dt>Chat template</dt>
      <dd>{info.hasChatTemplate ? 'yes' : 'no (chat files need one; plain text still trains)'}</dd>
    </dl>
  );
}

/** Top-level files of a dropped folder (or the dropped files themselves). */
async function droppedFiles(e: DragEvent): Promise<{ name: string; files: Map<string, Blob> }> {
  const items = [...e.dataTransfer.items].filter((i) => i.kind === 'file');
  const entries = items.map((i) => i.webkitGetAsEntry()).filter((x): x is FileSystemEntry => x !== null);
  const files = new Map<string, Blob>();
  const dir = entries.length === 1 && entries[0]!.isDirectory ? (entries[0] as FileSystemDirectoryEntry) : null;
  if (dir) {
    const reader = dir.createReader();
    const all: FileSystemEntry[] = [];
    // readEntries returns batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (batch.length === 0) break;
      all.push(...batch);
    }
    for (const entry of all) {
      if (!entry.isFile) continue;
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      files.set(entry.name, file);
    }
    return { name: dir.name, files };
  }
  for (const f of e.dataTransfer.files) files.set(f.name, f);
  return { name: 'dropped model', files };
}

/**
 * The tab the picker opens on: the one of the chosen model (the embedded model, a Hub repo), else
 * the models used before, else the Hugging Face list.
 */
export function initialTab(value: ModelInfo | null, embedded: ModelInfo | null, hasRecent: boolean): ModelTab {
  if (value?.source.kind === 'embedded' && embedded) return 'embedded';
  if (value?.source.kind === 'hub') return 'hub';
  if (value?.source.kind === 'local') return hasRecent ? 'recent' : 'local';
  return hasRecent ? 'recent' : 'hub';
}

interface Props {
  value: ModelInfo | null;
  onChange: (info: ModelInfo | null) => void;
  /** The embedded model, or null while it loads or when it could not be read. */
  embedded: ModelInfo | null;
  /** Why the embedded model could not be read, if it could not. */
  embeddedError?: string | null;
  /** Offer the models used before (the job form); the Models page lists them itself. */
  showRecent?: boolean;
}

export function ModelPicker({ value, onChange, embedded, embeddedError = null, showRecent = true }: Props) {
  const client = useClient();
  const known = useKnownModels();
  const id = useId();
  const [tab, setTab] = useState<ModelTab>(() => initialTab(value, embedded, showRecent && known.length > 0));
  const [busy, setBusy] = useState<string | null>(null);
  // A model chosen from outside (the embedded one arriving, a job's model) shows its own tab.
  const valueKey = value && (value.source.kind !== 'embedded' || embedded) ? modelId(value.source) : null;
  // The user's own choice of tab wins: a model arriving later does not move them off it.
  const [tabFor, setTabFor] = useState(valueKey);
  const [tabChosen, setTabChosen] = useState(false);
  if (valueKey !== tabFor) {
    setTabFor(valueKey);
    if (value && !tabChosen) setTab(initialTab(value, embedded, showRecent && known.length > 0));
  }
  const [error, setError] = useState<string | null>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    // React has no prop for webkitdirectory; set it on the element.
    const el = folderInput.current;
    if (el) {
      el.webkitdirectory = true;
      el.setAttribute('directory', '');
    }
  }, [tab]);

  const choose = (info: ModelInfo) => {
    rememberModel(info);
    onChange(info);
  };

  const load = async (what: string, fn: () => Promise<ModelInfo>) => {
    setBusy(what);
    setError(null);
    try {
      choose(await fn());
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  const importFolder = (name: string, files: Map<string, Blob>) => {
    const picked = new Map([...files].filter(([n]) => MODEL_FILE.test(n)));
    if (!picked.has('config.json')) {
      setError(`The folder ${name} has no config.json: pick the folder that holds config.json, the *.safetensors weights and tokenizer.json.`);
      return;
    }
    void load('local', () => client.importLocalModel(name, picked));
  };

  const { dragging, dropProps } = useDropZone((e) => {
    void droppedFiles(e).then(({ name, files }) => importFolder(name, files), (err: unknown) => setError(errorText(err)));
  });

  const tabs: { key: ModelTab; label: string; disabled?: boolean; note?: string }[] = [
    { key: 'embedded', label: 'Embedded model', disabled: embedded === null, note: embedded === null ? (embeddedError ? 'unavailable' : 'loading…') : undefined },
    ...(showRecent && known.length > 0 ? [{ key: 'recent' as const, label: 'Used before' }] : []),
    { key: 'hub', label: 'Hugging Face' },
    { key: 'local', label: 'Local folder' },
  ];

  return (
    <div className="model-picker">
      <div className="segmented" role="radiogroup" aria-label="Where the base model comes from">
        {tabs.map((t) => (
          <label key={t.key} className={`segment${tab === t.key ? ' on' : ''}${t.disabled ? ' disabled' : ''}`}>
            <input type="radio" name={`${id}-tab`} value={t.key} checked={tab === t.key} disabled={t.disabled} onChange={() => {
                setTab(t.key);
                setTabChosen(true);
              }}
            />
            {t.label}
            {t.note && <span className="tag">{t.note}</span>}
          </label>
        ))}
      </div>

      {embedded === null && embeddedError && (
        <p className="form-error small" role="alert" data-testid="embedded-error">
          The embedded model could not be read: {embeddedError}
        </p>
      )}

      {tab === 'embedded' && embedded && (
        <div className="picker-body">
          <button type="button" className="button" onClick={() => choose(embedded)}>
            Use {embedded.source.name}
          </button>
        </div>
      )}

      {tab === 'recent' && (
        <ul className="model-choices picker-body" aria-label="Models used before">
          {known.map((m) => {
            const on = value !== null && modelId(value.source) === modelId(m.info.source);
            return (
              <li key={modelId(m.info.source)}>
                <button type="button" className={on ? 'choice on' : 'choice'} aria-pressed={on} onClick={() => onChange(m.info)}>
                  <span className="choice-name">{m.info.source.name}</span>
                  <span className="hint">
                    {m.info.source.kind === 'hub' ? 'Hugging Face' : m.info.source.kind === 'local' ? 'local folder' : 'embedded'} · {m.info.summary.architecture} · {formatCompact(m.info.summary.parameters)} parameters
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
      )}

      {tab === 'hub' && <HubModels onChoose={choose} />}

      {tab === 'local' && (
        <div
          className={`picker-body dropzone${dragging ? ' dragging' : ''}`}
          {...dropProps}
          data-testid="model-dropzone"
        >
          <p>Drop a model folder here, or</p>
          <button type="button" className="button" onClick={() => folderInput.current?.click()} disabled={busy !== null}>
            Choose a folder…
          </button>
          <input
            ref={folderInput}
            type="file"
            multiple
            hidden
            data-testid="model-folder-input"
            onChange={(e) => {
              const list = [...(e.target.files ?? [])];
              e.target.value = '';
              if (list.length === 0) return;
              const first = list[0]!.webkitRelativePath;
              const name = first.includes('/') ? first.slice(0, first.indexOf('/')) : 'local model';
              // Only the folder's own files: subfolders are not part of a model.
              const files = new Map<string, Blob>();
              for (const f of list) {
                const rel = f.webkitRelativePath || f.name;
                const inner = rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : rel;
                if (!inner.includes('/')) files.set(inner, f);
              }
              importFolder(name, files);
            }}
          />
          <p className="muted small">
            Hugging Face layout: <code>config.json</code>, <code>*.safetensors</code> (sharded too), <code>tokenizer.json</code>, <code>tokenizer_config.json</code>. The files are copied into
            this browser&rsquo;s storage so jobs can resume after a reload.
          </p>
          {busy === 'local' && (
            <p className="small" aria-live="polite">
              <span className="spinner inline" aria-hidden="true" /> Copying and reading the model…
            </p>
          )}
        </div>
      )}

      <FormError message={error} />

      {value && <ModelSummary info={value} />}
    </div>
  );
}

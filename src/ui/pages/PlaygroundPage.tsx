// Playground compare: two or more panes (the base model, a job's adapter, a checkpoint) answer
// the same system and user message with shared or per-pane sampling settings, streaming side by
// side. Comparisons are kept in localStorage. Each pane also picks its engine: ours (WebGPU), or
// ONNX Runtime Web running the model exported to ONNX with the adapter merged in; and a pane can
// run a PEFT adapter the user picks from disk ("Imported adapter").
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { ChatMessage } from '../../data/datasetTypes';
import type { AdapterRef, GenerateOutput, JobRecord, ModelInfo, ModelSource } from '../../worker/trainingProtocol';

type ModelSummary = ModelInfo['summary'];
import { FormError } from '../components/FormError';
import { errorText, useClient, useEngine } from '../engine';
import { formatCount } from '../format';
import { modelId, useKnownModels } from '../modelRegistry';
import { hrefFor } from '../router';
import { isSmallModel } from '../tinyModel';
import { jobTitle } from './JobDetail';
import type { PickedAdapter } from '../playground/adapterFiles';
import { AdapterPicker, ENGINE_LABELS, EngineSelect, type PaneEngine } from '../playground/PaneEngineControls';
import { HISTORY_MAX, loadHistory, PlaygroundHistory, saveHistory, type HistoryEntry } from '../playground/PlaygroundHistory';
import { SamplingFields, type Sampling } from '../playground/SamplingFields';
import { TrainingBusyNote } from '../playground/TrainingBusyNote';

const DEFAULT_SAMPLING: Sampling = { temperature: 0.7, topP: 0.95, maxTokens: 128, seed: null };
/** A small model's defaults: greedy, so the panes show what each model learned, not sampling noise. */
const SMALL_MODEL_SAMPLING: Sampling = { ...DEFAULT_SAMPLING, temperature: 0 };

/** What a finished run's state line says; a reply cut by the model's context says so. */
export function finishLabel(finish: GenerateOutput['finish']): string {
  switch (finish) {
    case 'eos':
      return 'finished';
    case 'length':
      return 'max tokens';
    case 'context':
      return 'context full';
    default:
      return finish;
  }
}

/** The prompt's share of the context after a run: a warning when it leaves less than the max tokens. */
interface PromptRoom {
  /** The system and user message it was measured for (stale once either changes). */
  prompt: string;
  promptTokens: number;
  context: number;
  maxTokens: number;
}

/** What a pane runs: encoded in a <select> value. */
type PaneTarget =
  | { kind: 'base'; model: ModelSource; label: string }
  | { kind: 'job'; job: JobRecord }
  | { kind: 'checkpoint'; job: JobRecord; name: string }
  /** A PEFT adapter the pane's user picks from disk, on this base model. */
  | { kind: 'peft'; model: ModelSource; label: string };

interface PaneRun {
  text: string;
  tokens: number;
  startedAt: number;
  firstTokenAt: number | null;
  lastTokenAt: number | null;
  output: GenerateOutput | null;
  error: string | null;
  running: boolean;
}

interface Pane {
  key: number;
  target: string;
  sampling: Sampling;
  /** Earlier turns of this pane's conversation (multi-turn mode). */
  turns: ChatMessage[];
  run: PaneRun | null;
  engine: PaneEngine;
  /** The adapter of an "Imported adapter" target. */
  imported: PickedAdapter | null;
}

let paneKeys = 1;

function newPane(target: string, sampling: Sampling, engine: PaneEngine = 'whittle'): Pane {
  return { key: paneKeys++, target, sampling, turns: [], run: null, engine, imported: null };
}

function hasAdapter(j: JobRecord): boolean {
  return j.adapterKey !== null || j.checkpoints.length > 0;
}

/** Every target the panes can choose, keyed by its select value. */
function useTargets(): Map<string, PaneTarget> {
  const snap = useEngine();
  const known = useKnownModels();
  return useMemo(() => {
    const m = new Map<string, PaneTarget>();
    for (const k of known) m.set(`base|${modelId(k.info.source)}`, { kind: 'base', model: k.info.source, label: k.info.source.name });
    for (const j of snap.jobs ?? []) {
      const id = `base|${modelId(j.baseModel.source)}`;
      if (!m.has(id)) m.set(id, { kind: 'base', model: j.baseModel.source, label: j.baseModel.source.name });
    }
    for (const [k, t] of [...m]) if (t.kind === 'base') m.set(`peft|${k.slice('base|'.length)}`, { kind: 'peft', model: t.model, label: t.label });
    for (const j of snap.jobs ?? []) {
      if (!hasAdapter(j)) continue;
      m.set(`job|${j.id}`, { kind: 'job', job: j });
      for (const c of [...j.checkpoints].reverse()) m.set(`ckpt|${j.id}|${c.name}`, { kind: 'checkpoint', job: j, name: c.name });
    }
    return m;
  }, [snap.jobs, known]);
}

/** config.json summaries of every model a pane can run, by modelId. */
function useModelSummaries(): Map<string, ModelSummary> {
  const snap = useEngine();
  const known = useKnownModels();
  return useMemo(() => {
    const m = new Map<string, ModelSummary>();
    for (const j of snap.jobs ?? []) m.set(modelId(j.baseModel.source), j.baseModel.summary);
    for (const k of known) m.set(modelId(k.info.source), k.info.summary);
    return m;
  }, [snap.jobs, known]);
}

function targetLabel(t: PaneTarget): string {
  switch (t.kind) {
    case 'base':
      return `Base · ${t.label}`;
    case 'job':
      return `${jobTitle(t.job)} · ${t.job.adapterKey ? 'final adapter' : 'latest checkpoint'}`;
    case 'checkpoint':
      return `${jobTitle(t.job)} · ${t.name}`;
    case 'peft':
      return `Imported adapter · ${t.label}`;
  }
}

function targetModel(t: PaneTarget): ModelSource {
  return t.kind === 'base' || t.kind === 'peft' ? t.model : t.job.baseModel.source;
}

function targetAdapter(t: PaneTarget, imported: PickedAdapter | null): AdapterRef {
  switch (t.kind) {
    case 'base':
      return { kind: 'base' };
    case 'peft':
      if (!imported) throw new Error('Choose the adapter files (adapter_config.json and adapter_model.safetensors) for this pane first.');
      return { kind: 'peft', config: imported.config, weights: imported.weights };
    case 'job':
      return { kind: 'job', jobId: t.job.id };
    case 'checkpoint':
      return { kind: 'checkpoint', jobId: t.job.id, name: t.name };
  }
}

function PaneView({
  pane,
  index,
  targets,
  synced,
  multiTurn,
  canRemove,
  smallModel,
  onChange,
  onRemove,
}: {
  pane: Pane;
  index: number;
  targets: Map<string, PaneTarget>;
  synced: boolean;
  multiTurn: boolean;
  canRemove: boolean;
  smallModel: boolean;
  onChange: (p: Pane) => void;
  onRemove: () => void;
}) {
  const id = useId();
  const run = pane.run;
  // Decode speed so far: tokens after the first over the time since it came (prefill excluded).
  const liveRate = run && run.running && run.firstTokenAt !== null && run.lastTokenAt !== null && run.tokens > 1 ? (run.tokens - 1) / Math.max(0.001, (run.lastTokenAt - run.firstTokenAt) / 1000) : null;
  const rate = run?.output ? run.output.tokensPerSecond : liveRate;
  const out = useRef<HTMLDivElement>(null);
  const target = targets.get(pane.target);
  useEffect(() => {
    const el = out.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [run?.text]);
  return (
    <section className="pane card" aria-labelledby={`${id}-title`} data-testid="pane" data-engine={pane.engine}>
      <div className="pane-top">
        <div className="pane-head">
          <h2 id={`${id}-title`} className="visually-hidden">
            Pane {index + 1}
          </h2>
          <span className={`swatch swatch-${index % 8}`} aria-hidden="true" />
          <label className="visually-hidden" htmlFor={`${id}-target`}>
            Model for pane {index + 1}
          </label>
          <select id={`${id}-target`} className="pane-select" value={pane.target} onChange={(e) => onChange({ ...pane, target: e.target.value, turns: [], run: null })} data-testid="pane-target">
            {!targets.has(pane.target) && <option value={pane.target}>Choose a model…</option>}
            {[...targets].map(([k, t]) => (
              <option key={k} value={k}>
                {targetLabel(t)}
              </option>
            ))}
          </select>
          {canRemove && (
            <button type="button" className="button ghost small icon" onClick={onRemove} aria-label={`Remove pane ${index + 1}`}>
              ✕
            </button>
          )}
        </div>
        <div className="pane-options">
          <EngineSelect id={`${id}-engine`} value={pane.engine} disabled={run?.running} onChange={(engine) => onChange({ ...pane, engine, turns: [], run: null })} />
          {target?.kind === 'peft' && <AdapterPicker idPrefix={`${id}-adapter`} value={pane.imported} disabled={run?.running} onChange={(imported) => onChange({ ...pane, imported, turns: [], run: null })} />}
        </div>
      </div>
      {!synced && <SamplingFields value={pane.sampling} onChange={(sampling) => onChange({ ...pane, sampling })} idPrefix={`${id}-s`} smallModel={smallModel} />}
      <div className="pane-output" ref={out} aria-live="off" data-testid="pane-output">
        {multiTurn &&
          pane.turns.map((m, i) => (
            <div key={i} className={`turn turn-${m.role}`}>
              <span className="msg-role">{m.role}</span>
              <span className="msg-content">{m.content}</span>
            </div>
          ))}
        {run && (run.running || !multiTurn || run.text) ? (
          <div className="turn turn-assistant current">
            {multiTurn && <span className="msg-role">assistant</span>}
            <span className="msg-content">{run.text}</span>
            {run.running && <span className="caret" aria-hidden="true" />}
          </div>
        ) : (
          pane.turns.length === 0 && <p className="muted">The reply streams here.</p>
        )}
        {run?.running && run.tokens === 0 && pane.engine === 'onnxruntime' && (
          <p className="muted small" data-testid="pane-preparing">
            The first run exports the model to ONNX and starts ONNX Runtime Web; later runs reuse it.
          </p>
        )}
        <FormError message={run?.error} />
      </div>
      <div className="pane-stats mono small" aria-live="polite" aria-atomic="true">
        <span>{run ? `${formatCount(run.tokens)} tokens` : '\u00a0'}</span>
        <span data-testid="pane-rate">{rate !== null && rate !== undefined ? `${rate.toFixed(1)} tok/s` : ''}</span>
        <span data-testid="pane-state">
          {run?.output ? finishLabel(run.output.finish) : run?.running ? 'generating…' : run?.error ? 'error' : ''}
        </span>
      </div>
      {run?.output?.kernelPlan && (
        <p className="muted small mono" data-testid="pane-kernels">
          kernels: {run.output.kernelPlan}
        </p>
      )}
    </section>
  );
}

/** The history's name of a pane: its target, and the engine when it is not ours. */
function paneLabel(t: PaneTarget, p: Pane): string {
  const what = t.kind === 'peft' && p.imported ? `${targetLabel(t)} · ${p.imported.name}` : targetLabel(t);
  return p.engine === 'whittle' ? what : `${what} · ${ENGINE_LABELS[p.engine]}`;
}

/** A failed run's message; an adapter that does not fit the model says so first. */
function runErrorText(e: unknown, t: PaneTarget): string {
  const name = e instanceof Error ? e.name : '';
  if (name === 'PeftAdapterError' || name === 'MergeError') return `This adapter does not fit ${targetModel(t).name}: ${errorText(e)}`;
  return errorText(e);
}

export function PlaygroundPage({ job, checkpoint }: { job: string | null; checkpoint: string | null }) {
  const client = useClient();
  const snap = useEngine();
  const targets = useTargets();
  const summaries = useModelSummaries();
  const [system, setSystem] = useState('');
  const [user, setUser] = useState('');
  const [sampling, setSampling] = useState<Sampling>(DEFAULT_SAMPLING);
  const [synced, setSynced] = useState(true);
  const [multiTurn, setMultiTurn] = useState(false);
  const [panes, setPanes] = useState<Pane[]>([]);
  const [history, setHistory] = useState<HistoryEntry[]>(loadHistory);
  const [initFor, setInitFor] = useState<string | null>(null);
  const [room, setRoom] = useState<PromptRoom | null>(null);
  const aborts = useRef<AbortController[]>([]);
  const ids = useId();

  // Initial panes: base vs the job from the URL (or the newest job with an adapter).
  const routeKey = `${job ?? ''}|${checkpoint ?? ''}`;
  useEffect(() => {
    if (initFor === routeKey || targets.size === 0 || snap.jobs === null) return;
    const focus = job ? snap.jobs.find((j) => j.id === job) : snap.jobs.find(hasAdapter);
    const tuned = focus ? (checkpoint && job ? `ckpt|${focus.id}|${checkpoint}` : `job|${focus.id}`) : null;
    const base = focus ? `base|${modelId(focus.baseModel.source)}` : [...targets.keys()].find((k) => k.startsWith('base|'));
    const first = base ?? [...targets.keys()][0]!;
    const second = tuned && targets.has(tuned) ? tuned : first;
    // A small base model samples greedily by default; a job is asked with the system message it trained with.
    const firstTarget = targets.get(first);
    const small = firstTarget ? isSmallModel(summaries.get(modelId(targetModel(firstTarget)))?.parameters) : false;
    const defaults = small ? SMALL_MODEL_SAMPLING : DEFAULT_SAMPLING;
    setSampling(defaults);
    if (focus?.trainingSystemMessage) setSystem(focus.trainingSystemMessage);
    setPanes([newPane(first, defaults), newPane(second, defaults)]);
    setInitFor(routeKey);
  }, [routeKey, targets, summaries, snap.jobs, job, checkpoint, initFor]);

  const paneIsSmall = (p: Pane) => {
    const t = targets.get(p.target);
    return t ? isSmallModel(summaries.get(modelId(targetModel(t)))?.parameters) : false;
  };
  const anySmall = panes.some(paneIsSmall);
  const promptKey = `${system}\n${user}`;

  const running = panes.some((p) => p.run?.running);
  const update = (key: number, fn: (p: Pane) => Pane) => setPanes((ps) => ps.map((p) => (p.key === key ? fn(p) : p)));

  const runAll = async () => {
    if (!user.trim() || running) return;
    setRoom(null);
    const seedBase = sampling.seed ?? Math.floor(Math.random() * 2 ** 31);
    const controllers: AbortController[] = [];
    const jobs = panes.map(async (p) => {
      const t = targets.get(p.target);
      if (!t) return { label: p.target, text: '', tokensPerSecond: null };
      const label = paneLabel(t, p);
      const s = synced ? sampling : p.sampling;
      const messages: ChatMessage[] = [...(system.trim() ? [{ role: 'system' as const, content: system }] : []), ...(multiTurn ? p.turns : []), { role: 'user', content: user }];
      const ac = new AbortController();
      controllers.push(ac);
      const started = Date.now();
      update(p.key, (x) => ({ ...x, run: { text: '', tokens: 0, startedAt: started, firstTokenAt: null, lastTokenAt: null, output: null, error: null, running: true } }));
      try {
        const output = await client.generate(
          {
            model: targetModel(t),
            adapter: targetAdapter(t, p.imported),
            engine: p.engine,
            messages,
            maxNewTokens: s.maxTokens,
            temperature: s.temperature,
            topP: s.topP,
            // Synced panes share one seed so their differences come from the weights alone.
            seed: synced ? seedBase : (s.seed ?? Math.floor(Math.random() * 2 ** 31)),
          },
          {
            signal: ac.signal,
            onToken: (d) =>
              update(p.key, (x) =>
                x.run ? { ...x, run: { ...x.run, text: x.run.text + d.text, tokens: d.index + 1, firstTokenAt: x.run.firstTokenAt ?? Date.now(), lastTokenAt: Date.now() } } : x,
              ),
          },
        );
        const context = summaries.get(modelId(targetModel(t)))?.maxPositions;
        if (context !== undefined && context - output.promptTokens < s.maxTokens) {
          setRoom((r) => (r && r.prompt === promptKey && r.context - r.promptTokens <= context - output.promptTokens ? r : { prompt: promptKey, promptTokens: output.promptTokens, context, maxTokens: s.maxTokens }));
        }
        update(p.key, (x) => ({
          ...x,
          turns: multiTurn ? [...x.turns, { role: 'user', content: user }, { role: 'assistant', content: output.text }] : x.turns,
          run: x.run ? { ...x.run, text: multiTurn ? '' : output.text, tokens: output.tokens.length, output, running: false } : x.run,
        }));
        return { label, text: output.text, tokensPerSecond: output.tokensPerSecond };
      } catch (e) {
        update(p.key, (x) => ({ ...x, run: x.run ? { ...x.run, error: runErrorText(e, t), running: false } : x.run }));
        return { label, text: '', tokensPerSecond: null };
      }
    });
    aborts.current = controllers;
    const results = await Promise.all(jobs);
    aborts.current = [];
    if (multiTurn) setUser('');
    if (results.some((r) => r.text)) {
      const next = [{ time: Date.now(), system, user, panes: results }, ...history].slice(0, HISTORY_MAX);
      setHistory(next);
      saveHistory(next);
    }
  };

  if (snap.jobs !== null && targets.size === 0) {
    return (
      <div className="playground-page">
        <div className="page-head">
          <h1>Playground</h1>
        </div>
        <div className="card empty" data-testid="playground-empty">
          <h2>Nothing to compare yet</h2>
          <p className="muted">Add a model on the Models page, or train a job: its adapter and checkpoints then show up here next to the base model.</p>
          <div className="button-row">
            <a className="button primary" href={hrefFor({ page: 'models' })}>
              Add a model
            </a>
            <a className="button" href={hrefFor({ page: 'new-job', from: null })}>
              Create a job
            </a>
          </div>
        </div>
      </div>
    );
  }

  return (
    <div className="playground-page" data-testid="playground">
      <div className="page-head">
        <div>
          <h1>Playground</h1>
          <p className="muted">Same prompt, several models: the base model next to your fine-tuned adapters and checkpoints.</p>
        </div>
        <div className="button-row">
          <button
            type="button"
            className="button"
            disabled={running || panes.length >= 4}
            onClick={() => setPanes((ps) => [...ps, { ...newPane(ps.at(-1)?.target ?? [...targets.keys()][0] ?? '', sampling, ps.at(-1)?.engine), imported: ps.at(-1)?.imported ?? null }])}
            title={panes.length >= 4 ? 'At most four panes' : undefined}
          >
            + Add pane
          </button>
          <label className="check">
            <input type="checkbox" checked={synced} onChange={(e) => setSynced(e.target.checked)} data-testid="sync-toggle" />
            Sync settings
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={multiTurn}
              onChange={(e) => {
                setMultiTurn(e.target.checked);
                setPanes((ps) => ps.map((p) => ({ ...p, turns: [], run: null })));
              }}
            />
            Multi-turn
          </label>
        </div>
      </div>

      <TrainingBusyNote jobs={snap.jobs} />

      <div className="playground-layout">
        <form
          className="card prompt-card"
          onSubmit={(e) => {
            e.preventDefault();
            void runAll();
          }}
        >
          <label className="field" htmlFor={`${ids}-system`}>
            <span className="label">System message</span>
            <textarea id={`${ids}-system`} rows={3} value={system} onChange={(e) => setSystem(e.target.value)} placeholder="You are a helpful assistant." />
          </label>
          <label className="field" htmlFor={`${ids}-user`}>
            <span className="label">{multiTurn ? 'Next user message' : 'User message'}</span>
            <textarea
              id={`${ids}-user`}
              rows={5}
              value={user}
              onChange={(e) => setUser(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  void runAll();
                }
              }}
              placeholder="Ask something both models should answer."
              data-testid="user-message"
            />
          </label>
          {synced && <SamplingFields value={sampling} onChange={setSampling} idPrefix={`${ids}-shared`} smallModel={anySmall} />}
          {room && room.prompt === promptKey && (
            <p className="prompt-room" role="status" data-testid="prompt-room">
              This prompt takes {formatCount(room.promptTokens)} of the model&rsquo;s {formatCount(room.context)} positions, leaving{' '}
              {formatCount(Math.max(0, room.context - room.promptTokens))} tokens for the reply (max tokens is {formatCount(room.maxTokens)}). Shorten the system or user
              message for a longer answer.
            </p>
          )}
          <div className="button-row">
            <button type="submit" className="button primary" disabled={running || !user.trim() || panes.length === 0} data-testid="run-compare">
              {running ? 'Generating…' : 'Run'}
            </button>
            {running && (
              <button type="button" className="button" onClick={() => aborts.current.forEach((a) => a.abort())}>
                Stop
              </button>
            )}
            <span className="muted small">Ctrl+Enter</span>
            {multiTurn && panes.some((p) => p.turns.length > 0) && (
              <button type="button" className="button ghost" onClick={() => setPanes((ps) => ps.map((p) => ({ ...p, turns: [], run: null })))} disabled={running}>
                New conversation
              </button>
            )}
          </div>
        </form>

        <div className="panes" style={{ ['--pane-count' as string]: panes.length === 4 ? 2 : Math.max(2, panes.length) }}>
          {panes.map((p, i) => (
            <PaneView
              key={p.key}
              pane={p}
              index={i}
              targets={targets}
              synced={synced}
              multiTurn={multiTurn}
              canRemove={panes.length > 2}
              smallModel={paneIsSmall(p)}
              onChange={(np) => update(p.key, () => np)}
              onRemove={() => setPanes((ps) => ps.filter((x) => x.key !== p.key))}
            />
          ))}
        </div>
      </div>

      <PlaygroundHistory
        history={history}
        onClear={() => {
          setHistory([]);
          saveHistory([]);
        }}
        onReuse={(h) => {
          setSystem(h.system);
          setUser(h.user);
        }}
      />
    </div>
  );
}

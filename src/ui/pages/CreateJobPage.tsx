// Creating a fine-tuning job: model, data (validated as it is picked), hyperparameters with auto
// defaults, suffix, and an estimate. Create stays disabled, with the reasons listed, until the
// job would start.
import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { useLatest } from '../useLatest';
import { MAX_UNTRAINED_SHARE, untrainedExamples } from '../../data/datasetReport';
import type { DatasetReport } from '../../data/datasetTypes';
import { checkSuffix } from '../../jobs/job';
import { tryItHyperparameters } from '../../jobs/samples';
import type { FileRecord, HyperparametersPreview, ModelInfo, ModelSource } from '../../worker/trainingProtocol';
import { DatasetReportView } from '../components/DatasetReportView';
import { ExamplePreview } from '../components/ExamplePreview';
import { FormError } from '../components/FormError';
import { ALL_FIELDS, EMPTY_FORM, formForFamily, formFromRequest, HyperparameterForm, parseCheckpointEvery, parseForm, type HpForm } from '../components/HyperparameterForm';
import { MemoryEstimate } from '../components/MemoryEstimate';
import { ModelPicker } from '../components/ModelPicker';
import { useEmbeddedModelState } from '../embeddedModel';
import { errorText, useClient, useEngine, useEngineStore } from '../engine';
import { formatBytes, formatCount, formatDuration } from '../format';
import { modelId } from '../modelRegistry';
import { hrefFor, navigate } from '../router';
import { useSamplePrefill } from '../useSamplePrefill';
import { useDropZone } from '../useDropZone';

/** A job estimated to train longer than this asks for a yes before Create (a tab kept open for hours). */
export const LONG_JOB_SECONDS = 2 * 3600;

type DataSource = { kind: 'new'; file: File } | { kind: 'stored'; id: string; name: string; bytes: number; record: FileRecord | null };

interface Validation {
  report: DatasetReport | null;
  validating: boolean;
  error: string | null;
  /** Share of the file read so far while validating (null: not reported yet, or done). */
  percent: number | null;
}

const IDLE: Validation = { report: null, validating: false, error: null, percent: null };

/** Validates a newly picked file against the chosen model (token statistics need its tokenizer). */
function useValidation(source: DataSource | null, model: ModelInfo | null, maxSeqLen: number | undefined, tooFewIsError = false): Validation {
  const client = useClient();
  const file = source?.kind === 'new' ? source.file : null;
  const modelKey = model ? modelId(model.source) : null;
  // Results are kept with the inputs they answer, so a stale answer is never shown.
  const [result, setResult] = useState<{ file: File; modelKey: string | null; maxSeqLen: number | undefined; tooFewIsError: boolean; report: DatasetReport | null; error: string | null } | null>(null);
  // How much of the file the running validation has read, with the file it is for.
  const [progress, setProgress] = useState<{ file: File; percent: number } | null>(null);
  const modelRef = useLatest(model);
  useEffect(() => {
    if (!file) return;
    let live = true;
    const timer = setTimeout(() => {
      client
        .validateFile(file, { model: modelRef.current?.source, maxSeqLen, tooFewIsError }, (bytesRead, totalBytes) => {
          if (live) setProgress({ file, percent: totalBytes > 0 ? Math.floor((bytesRead / totalBytes) * 100) : 100 });
        })
        .then((report) => live && setResult({ file, modelKey, maxSeqLen, tooFewIsError, report, error: null }))
        .catch((e: unknown) => live && setResult({ file, modelKey, maxSeqLen, tooFewIsError, report: null, error: errorText(e) }));
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [client, file, modelKey, maxSeqLen, tooFewIsError, modelRef]);
  if (!file) return IDLE;
  if (!result || result.file !== file || result.modelKey !== modelKey || result.maxSeqLen !== maxSeqLen || result.tooFewIsError !== tooFewIsError) {
    // A new model keeps the old report on screen while the new one comes (no layout jump).
    const previous = result?.file === file ? result.report : null;
    return { report: previous, validating: true, error: null, percent: progress?.file === file ? progress.percent : null };
  }
  return { report: result.report, validating: false, error: result.error, percent: null };
}

function DataFileField({
  label,
  optional,
  source,
  onChange,
  validation,
  estimate,
  testId,
  preview,
}: {
  label: string;
  optional?: boolean;
  source: DataSource | null;
  onChange: (s: DataSource | null) => void;
  validation: Validation;
  estimate: { epochs: number | null; tokensPerSecond: number | null };
  testId: string;
  /** The model and cut the token preview uses. */
  preview?: { model: ModelSource | null; maxSeqLen: number | undefined };
}) {
  const id = useId();
  const input = useRef<HTMLInputElement>(null);
  const pick = (f: File | undefined) => f && onChange({ kind: 'new', file: f });
  const { dragging, dropProps } = useDropZone((e) => pick(e.dataTransfer.files[0]));
  return (
    <div className="data-field" data-testid={testId}>
      <div
        className={`dropzone small-zone${dragging ? ' dragging' : ''}`}
        {...dropProps}
      >
        <div className="data-field-head">
          <span className="label" id={`${id}-label`}>
            {label} {optional && <span className="muted">(optional)</span>}
          </span>
          {source && (
            <span className="file-chip">
              <span className="mono">{source.kind === 'new' ? source.file.name : source.name}</span>
              <span className="muted small"> {formatBytes(source.kind === 'new' ? source.file.size : source.bytes)}</span>
            </span>
          )}
        </div>
        <div className="button-row">
          <button type="button" className="button" onClick={() => input.current?.click()} aria-describedby={`${id}-label`}>
            {source ? 'Replace file…' : 'Choose JSONL file…'}
          </button>
          {source && (
            <button type="button" className="button ghost" onClick={() => onChange(null)}>
              Remove
            </button>
          )}
          {!source && <span className="muted small">or drop it here</span>}
        </div>
        <input
          ref={input}
          type="file"
          accept=".jsonl,.json,.txt,application/jsonl,application/x-ndjson"
          hidden
          data-testid={`${testId}-input`}
          onChange={(e) => {
            pick(e.target.files?.[0]);
            e.target.value = '';
          }}
        />
      </div>
      {source?.kind === 'stored' && (
        <p className="muted small">
          Stored file {source.id}
          {source.record?.examples != null ? `: ${formatCount(source.record.examples)} examples, validated when uploaded` : ''}.
        </p>
      )}
      {validation.validating && (
        <p className="small" aria-live="polite">
          <span className="spinner inline" aria-hidden="true" /> Validating…
          {validation.percent !== null && (
            <span role="progressbar" aria-label="Validation progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={validation.percent}>
              {' '}
              {validation.percent}%
            </span>
          )}
        </p>
      )}
      <FormError message={validation.error} />
      {validation.report && (
        // While a new model's report comes, the last one stays (dimmed): no layout jump.
        <div aria-busy={validation.validating} style={validation.validating ? { opacity: 0.6 } : undefined}>
          <DatasetReportView report={validation.report} estimate={estimate} testId={`${testId}-report`} />
        </div>
      )}
      {source?.kind === 'new' && <ExamplePreview file={source.file} model={preview?.model} maxSeqLen={preview?.maxSeqLen} />}
    </div>
  );
}

/** Median tokens/s of the newest job on this model that ran, for the time estimate. */
/** One numbered card of the form, its heading naming the section for screen readers. */
function FormStep({ id, num, title, children }: { id: string; num: number; title: string; children: ReactNode }) {
  return (
    <section className="card step" aria-labelledby={id}>
      <h2 id={id}>
        <span className="step-num" aria-hidden="true">
          {num}
        </span>
        {title}
      </h2>
      {children}
    </section>
  );
}

function useMeasuredSpeed(model: ModelInfo | null): number | null {
  const snap = useEngine();
  const store = useEngineStore();
  const key = model ? modelId(model.source) : null;
  const job = key ? snap.jobs?.find((j) => modelId(j.baseModel.source) === key && j.step > 0) : undefined;
  useEffect(() => {
    if (job) void store.loadJob(job.id).catch(() => {});
  }, [job, store]);
  const rows = job ? snap.traces[job.id]?.metrics : undefined;
  return useMemo(() => {
    if (!rows || rows.length === 0) return null;
    const v = rows.map((r) => r.tokensPerSecond).filter((x) => x > 0).sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)]! : null;
  }, [rows]);
}

export function CreateJobPage({ from, sample }: { from: string | null; sample?: string | null }) {
  const client = useClient();
  const snap = useEngine();
  const store = useEngineStore();
  const [pickedModel, setModel] = useState<ModelInfo | null>(null);
  const { info: embedded, error: embeddedError } = useEmbeddedModelState();
  // A new job starts on the embedded model, so a first fine-tune needs no download.
  const model = pickedModel ?? (from ? null : embedded);
  const [training, setTraining] = useState<DataSource | null>(null);
  const [validationFile, setValidationFile] = useState<DataSource | null>(null);
  const [form, setForm] = useState<HpForm>(EMPTY_FORM);
  const [suffix, setSuffix] = useState('');
  // OpenAI refuses fewer than 10 training examples; this lets the user go ahead anyway.
  const [allowSmall, setAllowSmall] = useState(false);
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [prefilled, setPrefilled] = useState<string | null>(null);
  const [allowUntrained, setAllowUntrained] = useState(false);
  const [allowLong, setAllowLong] = useState(false);
  const suffixId = useId();

  // "Rerun with these settings": the job's model, files (already stored) and requested values,
  // copied into the form once, when the job is known.
  const source = from ? snap.jobs?.find((j) => j.id === from) : undefined;
  if (source && prefilled !== source.id) {
    setPrefilled(source.id);
    setModel({ source: source.baseModel.source, summary: source.baseModel.summary, hasChatTemplate: true });
    const requested = { ...source.hyperparameters.requested };
    // Pin the seed the job used, so the rerun repeats it unless changed.
    if (source.hyperparameters.resolved && (requested.seed === undefined || requested.seed === 'auto')) requested.seed = source.hyperparameters.resolved.seed;
    setForm({ ...formFromRequest(requested, source.dtype), checkpointEvery: source.checkpointEvery ? String(source.checkpointEvery) : '' });
    setSuffix(source.suffix ?? '');
    setTraining({ kind: 'stored', ...source.trainingFile, record: null });
    setValidationFile(source.validationFile ? { kind: 'stored', ...source.validationFile, record: null } : null);
  }
  // "Open in the full form" from the first screen's Try-it card: the sample's files and settings.
  const sampleError = useSamplePrefill(from ? null : (sample ?? null), (p) => {
    setTraining({ kind: 'new', file: p.train });
    setValidationFile({ kind: 'new', file: p.valid });
    setForm(formFromRequest(tryItHyperparameters(p.sample, 'suggested'), 'auto'));
    setSuffix(p.sample.id);
  });
  // The stored files' records carry the example counts the preview needs.
  const storedIds = [training, validationFile].filter((s): s is Extract<DataSource, { kind: 'stored' }> => s?.kind === 'stored' && s.record === null).map((s) => s.id);
  const storedKey = storedIds.join(',');
  useEffect(() => {
    if (!storedKey) return;
    let live = true;
    void client.listFiles().then((files) => {
      if (!live) return;
      const fill = (s: DataSource | null): DataSource | null => (s?.kind === 'stored' && s.record === null ? { ...s, record: files.find((f) => f.id === s.id) ?? null } : s);
      setTraining(fill);
      setValidationFile(fill);
    });
    return () => {
      live = false;
    };
  }, [client, storedKey]);

  // Custom target modules are one family's layer names: a model of another family goes back to auto.
  const familyForm = formForFamily(form, model?.summary.family === 'gpt2' ? 'gpt2' : 'llama');
  if (familyForm !== form) setForm(familyForm);
  const { request, errors } = useMemo(() => parseForm(form), [form]);
  const checkpointEvery = parseCheckpointEvery(form);
  const maxSeqLen = typeof request.maxSeqLen === 'number' ? request.maxSeqLen : undefined;
  const trainCheck = useValidation(training, model, maxSeqLen, !allowSmall);
  const validCheck = useValidation(validationFile, model, maxSeqLen);
  const speed = useMeasuredSpeed(model);

  const examples = training?.kind === 'stored' ? (training.record?.examples ?? null) : trainCheck.report?.ok ? trainCheck.report.examples : null;
  const longest = trainCheck.report?.stats?.max;
  const requestKey = JSON.stringify(request);
  const hasFieldErrors = Object.keys(errors).length > 0;

  const previewKey = model && examples !== null && !hasFieldErrors ? `${modelId(model.source)}|${examples}|${longest ?? ''}|${requestKey}|${form.dtype}` : null;
  const [previewState, setPreviewState] = useState<{ key: string; preview: HyperparametersPreview | null; error: { field?: string; message: string } | null } | null>(null);
  useEffect(() => {
    if (!previewKey || !model || examples === null) return;
    let live = true;
    const timer = setTimeout(() => {
      client
        .previewHyperparameters({ model: model.source, examples, requested: JSON.parse(requestKey) as typeof request, longestExample: longest, dtype: form.dtype })
        .then((h) => live && setPreviewState({ key: previewKey, preview: h, error: null }))
        .catch((e: unknown) => live && setPreviewState({ key: previewKey, preview: null, error: { field: (e as { field?: string }).field, message: errorText(e) } }));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // model and examples are part of previewKey.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, previewKey]);
  const current = previewKey !== null && previewState?.key === previewKey ? previewState : null;
  const preview = current?.preview ?? null;
  const previewError = current?.error ?? null;
  const previewPending = previewKey !== null && current === null;

  let suffixError: string | null = null;
  try {
    checkSuffix(suffix.trim());
  } catch {
    suffixError = 'The suffix may have up to 64 letters, digits, - and _.';
  }

  // Everything that keeps Create disabled, in the order the form asks for it.
  const reasons: string[] = [];
  if (snap.status.state === 'failed') reasons.push('The training worker is not running.');
  if (!model) reasons.push('Choose a base model.');
  if (!training) reasons.push('Add a training file.');
  else if (training.kind === 'new') {
    if (trainCheck.validating || (!trainCheck.report && !trainCheck.error)) reasons.push('The training file is being validated.');
    else if (trainCheck.error) reasons.push('The training file could not be read.');
    else if (trainCheck.report && !trainCheck.report.ok) {
      const few = trainCheck.report.errorCount === 0 && trainCheck.report.examples > 0;
      reasons.push(few ? `The training file has only ${trainCheck.report.examples} examples: at least 10 are needed (or tick “Allow fewer than 10 training examples”).` : 'The training file has errors: see its report.');
    }
  }
  if (validationFile?.kind === 'new') {
    if (validCheck.validating || (!validCheck.report && !validCheck.error)) reasons.push('The validation file is being validated.');
    else if (validCheck.error) reasons.push('The validation file could not be read.');
    else if (validCheck.report && !validCheck.report.ok) reasons.push('The validation file has errors: see its report.');
  }
  // Most examples cut before their reply: the job would mostly train nothing, so Create waits for an explicit yes.
  const untrained = trainCheck.report?.ok ? untrainedExamples(trainCheck.report) : null;
  const tooUntrained = untrained !== null && untrained.share > MAX_UNTRAINED_SHARE;
  if (tooUntrained && !allowUntrained) {
    reasons.push(
      `${formatCount(untrained.count)} of ${formatCount(trainCheck.report!.examples)} training examples lose every trained token at ${formatCount(trainCheck.report!.maxSeqLen ?? 0)} tokens: shorten them, raise the maximum sequence length, or tick “Train anyway”.`,
    );
  }
  if (model && !model.hasChatTemplate && trainCheck.report?.format === 'chat') reasons.push('Chat-format data needs a model with a chat template; this one has none.');
  for (const f of ALL_FIELDS) if (errors[f.key]) reasons.push(errors[f.key]!);
  if (errors.targetModules) reasons.push(errors.targetModules);
  if (checkpointEvery.error) reasons.push(checkpointEvery.error);
  if (previewError) reasons.push(previewError.message);
  else if (previewPending && reasons.length === 0) reasons.push('Working out the auto settings…');
  for (const p of preview?.memory?.problems ?? []) reasons.push(p.message);
  if (suffixError) reasons.push(suffixError);

  const stats = trainCheck.report?.stats ?? null;
  const epochs = preview?.epochs ?? null;
  const billed = stats && epochs ? epochs * stats.trainedTokensAfterTruncation : null;
  const seconds = stats && epochs && speed ? (epochs * stats.processedTokens) / speed : null;
  // Hours of training at the speed measured here: Create waits for an explicit yes.
  const longEstimate = seconds !== null && seconds > LONG_JOB_SECONDS ? formatDuration(seconds * 1000) : null;
  if (longEstimate && !allowLong) reasons.push(`This job is estimated at ${longEstimate} on this device: confirm below to create it anyway.`);
  const canCreate = reasons.length === 0 && !submitting;

  const create = async () => {
    if (!model || !training) return;
    setSubmitting(true);
    setSubmitError(null);
    try {
      const upload = async (s: DataSource) => (s.kind === 'stored' ? s.id : (await client.uploadFile(s.file.name, s.file, model.source)).file.id);
      const trainingFileId = await upload(training);
      const validationFileId = validationFile ? await upload(validationFile) : null;
      const job = await client.createJob({
        model: model.source,
        trainingFileId,
        validationFileId,
        hyperparameters: request,
        suffix: suffix.trim() || null,
        dtype: form.dtype,
        ...(allowSmall ? { allowSmall: true } : {}),
        ...(checkpointEvery.value !== null ? { checkpointEvery: checkpointEvery.value } : {}),
      });
      store.upsertJob(job);
      navigate({ page: 'jobs', jobId: job.id, compare: [] });
    } catch (e) {
      setSubmitError(errorText(e));
      setSubmitting(false);
    }
  };

  return (
    <div className="create-page" data-testid="create-job-page">
      <div className="page-head">
        <div>
          <a className="back-link" href={hrefFor({ page: 'jobs', jobId: from, compare: [] })}>
            ← Fine-tuning
          </a>
          <h1>Create a fine-tuning job</h1>
          {from && <p className="muted">Settings copied from job {source ? (source.suffix ?? source.id) : from}.</p>}
          <FormError message={sampleError} />
        </div>
      </div>

      <div className="create-layout">
        <div className="create-form">
          <FormStep id="step-model" num={1} title="Base model">
            <ModelPicker value={model} onChange={setModel} embedded={embedded} embeddedError={embeddedError} />
          </FormStep>

          <FormStep id="step-data" num={2} title="Data">
            <p className="muted small">
              JSONL, one example per line: chat <code>{'{"messages": [...]}'}</code>, <code>{'{"prompt", "completion"}'}</code> or <code>{'{"text"}'}</code>. Files stay in this browser.
            </p>
            <DataFileField
              label="Training file"
              source={training}
              onChange={setTraining}
              validation={trainCheck}
              estimate={{ epochs, tokensPerSecond: speed }}
              testId="training-file"
              preview={{ model: model?.source ?? null, maxSeqLen }}
            />
            <label className="small">
              <input type="checkbox" checked={allowSmall} onChange={(e) => setAllowSmall(e.target.checked)} data-testid="allow-small" /> Allow fewer than 10 training examples
            </label>
            <DataFileField
              label="Validation file"
              optional
              source={validationFile}
              onChange={setValidationFile}
              validation={validCheck}
              estimate={{ epochs: 1, tokensPerSecond: speed }}
              testId="validation-file"
              preview={{ model: model?.source ?? null, maxSeqLen }}
            />
          </FormStep>

          <FormStep id="step-hp" num={3} title="Hyperparameters">
            <p className="muted small">Leave a field empty for auto: the rules pick a value from the data and the model, shown in grey.</p>
            <HyperparameterForm form={form} onChange={setForm} errors={errors} preview={preview} family={model?.summary.family === 'gpt2' ? 'gpt2' : 'llama'} />
          </FormStep>

          <FormStep id="step-suffix" num={4} title="Suffix">
            <div className="field">
              <label htmlFor={suffixId} className="label">
                Added to the fine-tuned model&rsquo;s name <span className="muted">(optional)</span>
              </label>
              <input
                id={suffixId}
                type="text"
                value={suffix}
                onChange={(e) => setSuffix(e.target.value)}
                placeholder="my-experiment"
                maxLength={80}
                aria-invalid={suffixError ? true : undefined}
                spellCheck={false}
                data-testid="suffix"
              />
              <span className="hint mono">
                ft:{model?.source.name ?? '<model>'}:{suffix.trim() || ''}:ftjob-…
              </span>
              {suffixError && <span className="field-error">{suffixError}</span>}
            </div>
          </FormStep>
        </div>

        <aside className="create-summary" aria-labelledby="summary-title">
          <div className="card sticky">
            <h2 id="summary-title">Summary</h2>
            <dl className="kv compact-kv">
              <dt>Model</dt>
              <dd>{model ? model.source.name : '–'}</dd>
              <dt>Examples</dt>
              <dd>{examples === null ? '–' : formatCount(examples)}</dd>
              <dt>Epochs</dt>
              <dd>{preview ? preview.epochs : '–'}</dd>
              <dt>Steps</dt>
              <dd>{preview ? `${formatCount(preview.totalSteps)} (batch ${preview.effectiveBatchSize})` : '–'}</dd>
              <dt>Learning rate</dt>
              <dd className="mono">{preview ? preview.learningRate.toExponential(1) : '–'}</dd>
              <dt>LoRA</dt>
              <dd>{preview ? `r ${preview.lora.r}, alpha ${preview.lora.alpha}, ${preview.lora.targetModules.length} modules` : '–'}</dd>
              <dt>Billed tokens</dt>
              <dd data-testid="summary-billed">{billed === null ? '–' : formatCount(billed)}</dd>
              <dt>Time</dt>
              <dd>{seconds === null ? (billed === null ? '–' : 'unknown until a job has run here') : `≈ ${formatDuration(seconds * 1000)}`}</dd>
            </dl>
            <MemoryEstimate memory={preview?.memory ?? null} pending={previewPending} />
            {tooUntrained && (
              <label className="check untrained-override">
                <input type="checkbox" checked={allowUntrained} onChange={(e) => setAllowUntrained(e.target.checked)} data-testid="allow-untrained" />
                Train anyway: {formatCount(untrained.count)} examples will teach nothing
              </label>
            )}
            {longEstimate && (
              <label className="check untrained-override">
                <input type="checkbox" checked={allowLong} onChange={(e) => setAllowLong(e.target.checked)} data-testid="allow-long" />
                This job is estimated at {longEstimate} on this device; create it anyway?
              </label>
            )}
            <button type="button" className="button primary block" disabled={!canCreate} onClick={() => void create()} data-testid="create-submit">
              {submitting ? 'Creating…' : 'Create job'}
            </button>
            {reasons.length > 0 && (
              <ul className="reasons" aria-label="Before you can create the job" data-testid="create-reasons">
                {reasons.map((r) => (
                  <li key={r}>{r}</li>
                ))}
              </ul>
            )}
            <FormError message={submitError} />
          </div>
        </aside>
      </div>
    </div>
  );
}

import type { GpuReport } from '../../../worker/protocol';
import { formatBytes, formatCount } from '../../format';
import { TableHead } from '../../components/TableHead';

interface KeyLimit {
  name: string;
  bytes: boolean;
  why: string;
}

const KEY_LIMITS: KeyLimit[] = [
  { name: 'maxStorageBufferBindingSize', bytes: true, why: 'Largest tensor one kernel can bind; bigger ones are split.' },
  { name: 'maxBufferSize', bytes: true, why: 'Largest single GPU buffer.' },
  { name: 'maxComputeWorkgroupStorageSize', bytes: true, why: 'Shared memory per workgroup for tiled kernels.' },
  { name: 'maxComputeInvocationsPerWorkgroup', bytes: false, why: 'Threads in one workgroup.' },
  { name: 'maxComputeWorkgroupsPerDimension', bytes: false, why: 'Workgroups per dispatch dimension.' },
  { name: 'maxStorageBuffersPerShaderStage', bytes: false, why: 'Tensors one kernel can bind.' },
];

interface Capability {
  feature: string;
  label: string;
  on: boolean;
  yes: string;
  no: string;
}

function capabilities(r: GpuReport): Capability[] {
  return [
    {
      feature: 'shader-f16',
      label: 'f16 shaders',
      on: r.hasF16,
      yes: 'Frozen weights can stay in half precision.',
      no: 'Weights use f32: twice the memory.',
    },
    {
      feature: 'timestamp-query',
      label: 'GPU timestamps',
      on: r.hasTimestamps,
      yes: 'Per-kernel GPU timings.',
      no: 'Wall-clock timings only.',
    },
    {
      feature: 'subgroups',
      label: 'Subgroups',
      on: r.hasSubgroups,
      yes: 'Subgroup operations available: the GPU plan reduces norms, the loss and sums with them where WGSL has subgroup_id.',
      no: 'Reductions use workgroup memory.',
    },
  ];
}

function limitValue(limits: Record<string, number>, l: KeyLimit): { main: string; raw: string | null } {
  const v = limits[l.name];
  if (v === undefined) return { main: 'not reported', raw: null };
  return l.bytes ? { main: formatBytes(v), raw: `${formatCount(v)} bytes` } : { main: formatCount(v), raw: null };
}

export function AdapterCard({ report }: { report: GpuReport }) {
  const a = report.adapter;
  return (
    <section className="card" aria-labelledby="adapter-title" data-testid="adapter">
      <div className="card-head">
        <h2 id="adapter-title">GPU adapter</h2>
        <span className="pill ok" data-testid="webgpu-status">
          WebGPU ready
        </span>
      </div>
      <dl className="kv adapter-kv">
        <dt>Vendor</dt>
        <dd data-testid="adapter-vendor">{a.vendor || 'not reported'}</dd>
        <dt>Architecture</dt>
        <dd data-testid="adapter-architecture">{a.architecture || 'not reported'}</dd>
        <dt>Device</dt>
        <dd>{a.device || 'not reported'}</dd>
        <dt>Description</dt>
        <dd data-testid="adapter-description">{a.description || 'not reported'}</dd>
        <dt>Kind</dt>
        <dd>
          {report.isFallbackAdapter === null
            ? 'not reported'
            : report.isFallbackAdapter
              ? 'software (fallback) adapter: expect slow training'
              : 'hardware adapter'}
        </dd>
      </dl>
      <ul className="caps" aria-label="Optional features Whittle uses">
        {capabilities(report).map((c) => (
          <li key={c.feature} className={c.on ? 'cap on' : 'cap off'} data-testid={`cap-${c.feature}`} data-on={c.on}>
            <span className="cap-badge">
              <span className="cap-icon" aria-hidden="true">
                {c.on ? '✓' : '–'}
              </span>
              {c.label}
              <span className="visually-hidden">{c.on ? ': available' : ': not available'}</span>
            </span>
            <code className="cap-feature">{c.feature}</code>
            <span className="cap-note">{c.on ? c.yes : c.no}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function LimitsCard({ report }: { report: GpuReport }) {
  const a = report.adapter;
  const allLimits = Object.entries(a.limits).sort(([x], [y]) => x.localeCompare(y));
  return (
    <section className="card" aria-labelledby="limits-title" data-testid="limits">
      <h2 id="limits-title">Key limits</h2>
      <table className="table limits-table">
        <TableHead columns={['Limit', { num: 'Value' }]} />
        <tbody>
          {KEY_LIMITS.map((l) => {
            const v = limitValue(a.limits, l);
            return (
              <tr key={l.name}>
                <th scope="row">
                  <code>{l.name}</code>
                  <span className="hint">{l.why}</span>
                </th>
                <td className="num" data-testid={`limit-${l.name}`}>
                  <span className="value">{v.main}</span>
                  {v.raw && <span className="hint mono">{v.raw}</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <details className="all-limits">
        <summary>All {allLimits.length} limits</summary>
        <dl className="kv mono small">
          {allLimits.map(([k, v]) => (
            <div key={k} className="kv-row">
              <dt>{k}</dt>
              <dd>{formatCount(v)}</dd>
            </div>
          ))}
        </dl>
      </details>
    </section>
  );
}

export function FeaturesCard({ report }: { report: GpuReport }) {
  const enabled = new Set(report.adapter.features);
  return (
    <section className="card wide" aria-labelledby="features-title" data-testid="features">
      <h2 id="features-title">Adapter features</h2>
      <p className="muted">
        Everything the adapter offers. Highlighted: enabled on Whittle&rsquo;s device.
      </p>
      <ul className="chips" aria-label="Adapter features">
        {report.adapterFeatures.map((f) => (
          <li key={f} className={enabled.has(f) ? 'chip used' : 'chip'}>
            {f}
            {enabled.has(f) && <span className="visually-hidden"> (enabled)</span>}
          </li>
        ))}
        {report.adapterFeatures.length === 0 && <li className="muted">none beyond core WebGPU</li>}
      </ul>
      {report.wgslLanguageFeatures.length > 0 && (
        <>
          <h3 className="subhead">WGSL language features</h3>
          <ul className="chips" aria-label="WGSL language features">
            {report.wgslLanguageFeatures.map((f) => (
              <li key={f} className="chip quiet">
                {f}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

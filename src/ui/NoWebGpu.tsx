import type { UnavailableReason } from '../worker/protocol';

interface Props {
  reason: UnavailableReason | 'error';
  message: string;
}

const HEADLINES: Record<Props['reason'], string> = {
  'no-webgpu': 'This browser does not offer WebGPU here',
  'no-adapter': 'WebGPU is on, but no GPU adapter is available',
  'device-failed': 'The GPU adapter was found, but a device could not be opened',
  error: 'The GPU check failed',
};

/** What to do when there is no usable WebGPU: the likely cause first, then the general checklist. */
export function NoWebGpu({ reason, message }: Props) {
  const secure = window.isSecureContext;
  const hasGpu = 'gpu' in navigator;
  return (
    <section className="card help" aria-labelledby="help-title" data-testid="no-webgpu">
      <p className="eyebrow warn-text">WebGPU unavailable</p>
      <h2 id="help-title">{HEADLINES[reason]}</h2>
      <p className="lead">
        Whittle trains and runs models on your GPU through WebGPU, entirely inside this tab. Nothing is uploaded, so it needs
        WebGPU to work at all. Here is what to check.
      </p>

      {!secure && (
        <div className="callout warn" role="note">
          <strong>This page is not a secure context.</strong> Browsers only expose WebGPU over <code>https://</code> or on{' '}
          <code>http://localhost</code> / <code>http://127.0.0.1</code>. Opening <code>index.html</code> from disk or over
          plain http from another host hides it. Serve Whittle with <code>npm start</code> and open the address it prints.
        </div>
      )}

      <ol className="steps">
        <li>
          <h3>Use a browser that ships WebGPU</h3>
          <p>
            Chrome or Edge 113 or newer on Windows, macOS and ChromeOS (121+ on Android); Safari 26 on macOS, iOS and iPadOS;
            Firefox 141+ on Windows. Elsewhere WebGPU may still sit behind a flag.
          </p>
        </li>
        <li>
          <h3>Turn on hardware acceleration</h3>
          <p>
            In Chrome or Edge: Settings, System, &ldquo;Use graphics acceleration when available&rdquo;, then relaunch. The page{' '}
            <code>chrome://gpu</code> shows whether WebGPU is hardware accelerated.
          </p>
        </li>
        <li>
          <h3>Try the flags if your GPU is blocklisted or you are on Linux</h3>
          <p>
            Enable <code>chrome://flags/#enable-unsafe-webgpu</code> (and <code>#enable-vulkan</code> on Linux). In Firefox,
            set <code>dom.webgpu.enabled</code> in <code>about:config</code>. Safari before 26: Develop, Feature Flags, WebGPU.
          </p>
        </li>
        <li>
          <h3>No GPU at all?</h3>
          <p>
            Chromium can run WebGPU on the CPU with SwiftShader: start it with{' '}
            <code>--enable-unsafe-webgpu --use-webgpu-adapter=swiftshader</code>. It is slow, but enough to try the self-test.
          </p>
        </li>
      </ol>

      <details className="diagnostics">
        <summary>Diagnostics</summary>
        <dl className="kv">
          <dt>Secure context</dt>
          <dd>{secure ? 'yes' : 'no'}</dd>
          <dt>navigator.gpu</dt>
          <dd>{hasGpu ? 'present' : 'missing'}</dd>
          <dt>Detail</dt>
          <dd>{message}</dd>
          <dt>Browser</dt>
          <dd className="mono">{navigator.userAgent}</dd>
        </dl>
      </details>
    </section>
  );
}

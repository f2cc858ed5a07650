// Reading a PEFT adapter the user picked in a playground pane (a folder, or the two files):
// adapter_config.json parsed here so a broken file is reported at once; the weights stay a Blob
// (File) that goes to the worker as it is. Whether the adapter fits the model is the worker's
// call (importPeftAdapter / the ONNX merge), reported when the pane runs.

// PEFT's file names (as src/formats/peft.ts has them; not imported, so the page bundle keeps no
// engine code).
const ADAPTER_CONFIG_FILE = 'adapter_config.json';
const ADAPTER_MODEL_FILE = 'adapter_model.safetensors';

export interface PickedAdapter {
  /** What the pane shows: the picked folder's name, else "adapter files". */
  name: string;
  /** Parsed adapter_config.json. */
  config: unknown;
  weights: Blob;
  /** "LoRA r 8 · 7 modules" from the config, when it says; null otherwise. */
  summary: string | null;
}

/** A few words on the config (whether it fits the model is checked when the pane runs). */
export function adapterSummary(config: Record<string, unknown>): string | null {
  const parts: string[] = [];
  if (typeof config.r === 'number') parts.push(`LoRA r ${config.r}`);
  const targets = config.target_modules;
  if (Array.isArray(targets)) parts.push(`${targets.length} module${targets.length === 1 ? '' : 's'}`);
  else if (typeof targets === 'string') parts.push(targets);
  return parts.length ? parts.join(' · ') : null;
}

export class AdapterFilesError extends Error {
  override name = 'AdapterFilesError';
}

/** A picked file's path inside the pick, '/'-separated (webkitRelativePath for folders). */
function pathOf(f: File): string {
  return f.webkitRelativePath || f.name;
}

/** The adapter in `files`: both files required, at the top of a picked folder or picked directly. */
export async function readPickedAdapter(files: readonly File[]): Promise<PickedAdapter> {
  if (files.length === 0) throw new AdapterFilesError('No files were picked.');
  const byBase = (base: string) => {
    const hits = files.filter((f) => pathOf(f).split('/').at(-1) === base);
    // In a folder pick, the top-level file wins over ones in checkpoint subfolders.
    return hits.sort((a, b) => pathOf(a).split('/').length - pathOf(b).split('/').length)[0];
  };
  const configFile = byBase(ADAPTER_CONFIG_FILE);
  const weights = byBase(ADAPTER_MODEL_FILE);
  const missing = [configFile ? null : ADAPTER_CONFIG_FILE, weights ? null : ADAPTER_MODEL_FILE].filter((x): x is string => x !== null);
  if (missing.length > 0) {
    throw new AdapterFilesError(`A PEFT adapter needs ${ADAPTER_CONFIG_FILE} and ${ADAPTER_MODEL_FILE}; ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing.`);
  }
  let config: unknown;
  try {
    config = JSON.parse(await configFile!.text());
  } catch (e) {
    throw new AdapterFilesError(`${ADAPTER_CONFIG_FILE} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new AdapterFilesError(`${ADAPTER_CONFIG_FILE} is not a JSON object.`);
  const folder = pathOf(weights!).includes('/') ? pathOf(weights!).split('/')[0]! : null;
  return { name: folder ?? 'adapter files', config, weights: weights!, summary: adapterSummary(config as Record<string, unknown>) };
}

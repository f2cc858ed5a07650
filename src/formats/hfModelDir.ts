// A Hugging Face model folder (config.json, tokenizer files, safetensors weights, single or
// sharded) read through an abstract directory, so the same code serves a dropped browser folder,
// files cached from the Hub, and a directory on disk (nodeModelDir in nodeByteSource.ts).
// This layer only finds and parses files; model/config.ts interprets config.json.

import {
  blobSource,
  bytesSource,
  parseSafetensorsIndex,
  SafetensorsWeights,
  type ByteSource,
} from './safetensors';
import { FINETUNE_SETTINGS_FILE, FinetuneSettingsError, parseFinetuneSettings, type FinetuneSettings } from './finetuneSettings';

export class ModelDirError extends Error {
  override name = 'ModelDirError';
  constructor(
    message: string,
    /** The file the problem concerns, when there is one. */
    readonly file?: string,
  ) {
    super(message);
  }
}

export interface ModelDir {
  /** File names relative to the model folder, e.g. "config.json". */
  readonly fileNames: readonly string[];
  open(name: string): Promise<ByteSource>;
}

export function bytesModelDir(files: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>): ModelDir {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    fileNames: [...map.keys()].sort(),
    open(name) {
      const data = map.get(name);
      return data ? Promise.resolve(bytesSource(data)) : Promise.reject(new ModelDirError(`no file ${name}`, name));
    },
  };
}

export function blobModelDir(files: ReadonlyMap<string, Blob>): ModelDir {
  return {
    fileNames: [...files.keys()].sort(),
    open(name) {
      const blob = files.get(name);
      return blob ? Promise.resolve(blobSource(blob)) : Promise.reject(new ModelDirError(`no file ${name}`, name));
    },
  };
}

/**
 * Files from a folder picker (`<input webkitdirectory>` or a drop): names are taken relative to
 * the picked folder, i.e. webkitRelativePath without its first segment.
 */
export function filesModelDir(files: Iterable<File>): ModelDir {
  const map = new Map<string, Blob>();
  for (const file of files) {
    const rel = file.webkitRelativePath || file.name;
    const slash = rel.indexOf('/');
    map.set(slash >= 0 && file.webkitRelativePath ? rel.slice(slash + 1) : rel, file);
  }
  return blobModelDir(map);
}

export async function readModelText(dir: ModelDir, name: string): Promise<string> {
  if (!dir.fileNames.includes(name)) throw new ModelDirError(`the model folder has no ${name}`, name);
  const src = await dir.open(name);
  const bytes = await src.read(0, src.size);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ModelDirError(`${name} is not valid UTF-8`, name);
  }
}

export async function readModelJson(dir: ModelDir, name: string): Promise<unknown> {
  const text = await readModelText(dir, name);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelDirError(`${name} is not valid JSON: ${(e as Error).message}`, name);
  }
}

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/** Which weight files a folder's model lives in (and the index, when sharded). */
export async function openModelWeights(dir: ModelDir): Promise<SafetensorsWeights> {
  const names = dir.fileNames;
  if (names.includes(SAFETENSORS_INDEX)) {
    const index = parseSafetensorsIndex(await readModelJson(dir, SAFETENSORS_INDEX));
    for (const file of index.files) {
      if (!names.includes(file)) {
        throw new ModelDirError(`${SAFETENSORS_INDEX} lists ${file} but the folder does not have it (download incomplete?)`, file);
      }
    }
    const files = await Promise.all(index.files.map(async (name) => ({ name, source: await dir.open(name) })));
    return SafetensorsWeights.open(files, index);
  }
  if (names.includes('model.safetensors')) {
    return SafetensorsWeights.open([{ name: 'model.safetensors', source: await dir.open('model.safetensors') }]);
  }
  if (names.some((n) => /^model-\d+-of-\d+\.safetensors$/.test(n))) {
    throw new ModelDirError(`the folder has sharded weights but no ${SAFETENSORS_INDEX}`, SAFETENSORS_INDEX);
  }
  if (names.some((n) => n === 'pytorch_model.bin' || n.endsWith('.bin') || n.endsWith('.pt') || n.endsWith('.pth'))) {
    throw new ModelDirError(
      'the folder has PyTorch pickle weights (.bin/.pt) only; Whittle reads safetensors (convert with ' +
        'transformers: model.save_pretrained(dir, safe_serialization=True))',
    );
  }
  throw new ModelDirError('the folder has no model.safetensors or model.safetensors.index.json', 'model.safetensors');
}

export interface HfModelFiles {
  /** config.json, unparsed: model/config.ts parseModelConfig interprets it. */
  config: unknown;
  generationConfig: unknown | null;
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
  /** chat_template.jinja, which newer repos ship instead of tokenizer_config.chat_template. */
  chatTemplate: string | null;
  /** whittle_finetune.json, checked: the settings the model recommends for 'auto'. */
  finetune: FinetuneSettings | null;
  weights: SafetensorsWeights;
}

/** Reads config.json, tokenizer files, generation_config.json, whittle_finetune.json and the weight headers. */
export async function loadHfModelDir(dir: ModelDir): Promise<HfModelFiles> {
  const optional = (name: string) => (dir.fileNames.includes(name) ? readModelJson(dir, name) : Promise.resolve(null));
  const config = await readModelJson(dir, 'config.json');
  const generationConfig = await optional('generation_config.json');
  const tokenizerJson = await optional('tokenizer.json');
  const tokenizerConfig = await optional('tokenizer_config.json');
  const chatTemplate = dir.fileNames.includes('chat_template.jinja') ? await readModelText(dir, 'chat_template.jinja') : null;
  let finetune: FinetuneSettings | null = null;
  try {
    const json = await optional(FINETUNE_SETTINGS_FILE);
    finetune = json === null ? null : parseFinetuneSettings(json);
  } catch (e) {
    if (e instanceof FinetuneSettingsError) throw new ModelDirError(e.message, FINETUNE_SETTINGS_FILE);
    throw e;
  }
  const weights = await openModelWeights(dir);
  return { config, generationConfig, tokenizerJson, tokenizerConfig, chatTemplate, finetune, weights };
}

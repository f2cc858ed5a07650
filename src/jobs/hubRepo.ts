/**
 * Which files of a Hugging Face repo make a model folder, found through the Hub API
 * (@huggingface/hub) instead of typed by hand: the repo's file listing at a revision with sizes,
 * the config, tokenizer and chat-template files, and the weights (model.safetensors, or a sharded
 * checkpoint's index and every shard the index names). The files are then downloaded by the
 * resumable downloader of models.ts. No Node imports: the worker and the tests use it alike.
 */
import { listFiles, modelInfo } from '@huggingface/hub';
import type { ModelSource } from './job';
import { HUB_URL } from './models';

export interface HubRepoFile {
  name: string;
  /** Bytes of the file (of the LFS object for weights). */
  bytes: number;
}

export interface HubRepoListing {
  repo: string;
  /** The revision asked for (a branch, tag or commit). */
  revision: string;
  /** The commit the revision points at, when the Hub said. */
  commit: string | null;
  /** The files to download, in download order (small files first), with sizes. */
  files: HubRepoFile[];
  bytes: number;
  /** A sharded checkpoint: how many shards its index names. */
  shards: number;
  /** config.json as the repo has it (the engine decides from it whether it can run the model). */
  config: unknown;
}

/** status: the HTTP status behind the error (401 gated or private, 403 no access, 404 missing), when one. */
export class HubRepoError extends Error {
  override name = 'HubRepoError';
  constructor(
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

export interface ResolveHubRepoOptions {
  revision?: string;
  hubUrl?: string;
  /** A Hugging Face access token (gated and private repos). */
  accessToken?: string | null;
  fetch?: typeof fetch;
}

/** Small files a model folder uses, when the repo has them; config.json and tokenizer.json are required. */
const SMALL_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];
const REQUIRED = ['config.json', 'tokenizer.json'];
const INDEX = 'model.safetensors.index.json';

function statusOf(e: unknown): number | null {
  const s = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : null;
}

/** The Hub's answer in words a user can act on. */
function explain(repo: string, revision: string, status: number | null, token: boolean, what: string): string {
  if (status === 401) {
    return token
      ? `${repo}: the Hub refused the access token (HTTP 401). Check the token (Settings > Access Tokens on huggingface.co).`
      : `${repo} is gated or private (HTTP 401): accept its licence on huggingface.co/${repo}, then give a Hugging Face access token.`;
  }
  if (status === 403) return `${repo}: this access token has no access (HTTP 403). Accept the licence on huggingface.co/${repo} with the account that made the token, or wait until the request is approved.`;
  if (status === 404) return `${repo}: no such repo or revision ${JSON.stringify(revision)} on the Hub (HTTP 404), or it is private.`;
  return `${repo}: ${what}`;
}

function fileUrl(hubUrl: string, repo: string, revision: string, file: string): string {
  return `${hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}

async function fetchJson(fetchImpl: typeof fetch, url: string, token: string | null, repo: string, revision: string, file: string): Promise<unknown> {
  const res = await fetchImpl(url, token ? { headers: { Authorization: `Bearer ${token}` } } : undefined);
  if (!res.ok) throw new HubRepoError(explain(repo, revision, res.status, token !== null, `${file}: HTTP ${res.status}`), res.status);
  try {
    return await res.json();
  } catch (e) {
    throw new HubRepoError(`${repo}: ${file} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The shard file names a safetensors index maps tensors to, in order. */
export function shardsOfIndex(index: unknown): string[] {
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new HubRepoError(`${INDEX} has no weight_map object`);
  const names = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || !file.endsWith('.safetensors')) throw new HubRepoError(`${INDEX} maps ${tensor} to ${JSON.stringify(file)}, not a .safetensors file`);
    names.add(file);
  }
  if (names.size === 0) throw new HubRepoError(`${INDEX} names no tensors`);
  return [...names].sort();
}

/** Lists a repo through the Hub API and picks the files a model folder needs. */
export async function resolveHubRepo(repo: string, options: ResolveHubRepoOptions = {}): Promise<HubRepoListing> {
  const revision = options.revision?.trim() || 'main';
  const hubUrl = (options.hubUrl ?? HUB_URL).replace(/\/$/, '');
  const token = options.accessToken?.trim() || null;
  const fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  const credentials = token ? { accessToken: token } : {};

  const listed = new Map<string, number>();
  try {
    for await (const f of listFiles({ repo: { type: 'model', name: repo }, revision, hubUrl, fetch: fetchImpl, ...credentials })) {
      if (f.type === 'file') listed.set(f.path, f.lfs?.size ?? f.size);
    }
  } catch (e) {
    const status = statusOf(e);
    throw new HubRepoError(explain(repo, revision, status, token !== null, `listing its files failed: ${e instanceof Error ? e.message : String(e)}`), status);
  }
  for (const f of REQUIRED) {
    if (!listed.has(f)) throw new HubRepoError(`${repo} has no ${f} at revision ${revision}: not a model folder this app can load (it needs config.json, tokenizer.json and safetensors weights)`);
  }

  const files: HubRepoFile[] = SMALL_FILES.filter((f) => listed.has(f)).map((name) => ({ name, bytes: listed.get(name)! }));
  let shards = 0;
  if (listed.has('model.safetensors')) {
    files.push({ name: 'model.safetensors', bytes: listed.get('model.safetensors')! });
  } else if (listed.has(INDEX)) {
    const index = await fetchJson(fetchImpl, fileUrl(hubUrl, repo, revision, INDEX), token, repo, revision, INDEX);
    const names = shardsOfIndex(index);
    const missing = names.filter((n) => !listed.has(n));
    if (missing.length) throw new HubRepoError(`${repo}: ${INDEX} names ${missing.join(', ')}, which the repo does not have`);
    files.push({ name: INDEX, bytes: listed.get(INDEX)! }, ...names.map((name) => ({ name, bytes: listed.get(name)! })));
    shards = names.length;
  } else {
    const other = [...listed.keys()].filter((f) => /\.(bin|pt|pth|gguf|onnx)$/.test(f));
    throw new HubRepoError(`${repo} has no safetensors weights (model.safetensors or ${INDEX})${other.length ? `; it has ${other.slice(0, 3).join(', ')}, formats this app does not read` : ''}`);
  }

  let commit: string | null = null;
  try {
    const info = await modelInfo({ name: repo, revision, hubUrl, fetch: fetchImpl, additionalFields: ['sha'], ...credentials });
    commit = typeof info.sha === 'string' ? info.sha : null;
  } catch {
    // The commit is shown, not needed: the listing above already proved access.
  }
  const config = await fetchJson(fetchImpl, fileUrl(hubUrl, repo, revision, 'config.json'), token, repo, revision, 'config.json');
  return { repo, revision, commit, files, bytes: files.reduce((n, f) => n + f.bytes, 0), shards, config };
}

/** The model source that downloads a listing's files. */
export function hubSourceOf(listing: HubRepoListing): Extract<ModelSource, { kind: 'hub' }> {
  return { kind: 'hub', name: listing.repo, revision: listing.revision, files: listing.files.map((f) => f.name) };
}

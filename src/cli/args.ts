// Argument parsing on node:util parseArgs, with a help text generated from the same spec so the
// two never disagree, and value checks that name the flag at fault.

import { parseArgs } from 'node:util';

import { KERNEL_CHOICES, type KernelChoice } from '../gpu';

import { CliError } from './io';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Shown in help: `--batch N`. */
  arg?: string;
  help: string;
  /** Shown in help as "(default ...)"; parsing does not apply it (commands do, so 'auto' stays visible). */
  default?: string;
  multiple?: boolean;
  short?: string;
}

export interface CommandSpec {
  name: string;
  /** Positional arguments, in order; a trailing `?` marks optional ones. */
  positionals: string[];
  summary: string;
  options: Record<string, OptionSpec>;
  /** Extra lines at the end of the help. */
  notes?: string[];
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedCommand {
  values: OptionValues;
  positionals: string[];
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`usage: whittle ${spec.name} ${spec.positionals.map((p) => (p.endsWith('?') ? `[${p.slice(0, -1)}]` : `<${p}>`)).join(' ')} [options]`, '', spec.summary, '', 'options:'];
  const entries = Object.entries({ ...spec.options, help: { type: 'boolean', help: 'show this help' } as OptionSpec });
  const left = entries.map(([name, o]) => `  --${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}${o.multiple ? ' ...' : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  entries.forEach(([, o], i) => {
    const dflt = o.default !== undefined ? ` (default ${o.default})` : '';
    const aliases = Object.keys(FLAG_ALIASES).filter((a) => FLAG_ALIASES[a] === entries[i]![0]);
    const also = aliases.length ? ` (also --${aliases.join(', --')})` : '';
    lines.push(`${left[i]!.padEnd(width)}${o.help}${dflt}${also}`);
  });
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n') + '\n';
}

/**
 * Other spellings of our flags, so scripts written for the flag names of the jobs spec and of
 * OpenAI-style tools work unchanged: `--lora-rank 16` is `--lora-r 16`.
 */
export const FLAG_ALIASES: Readonly<Record<string, string>> = {
  'lora-rank': 'lora-r',
  'warmup-steps': 'warmup',
  'lr-scheduler': 'schedule',
  'max-seq-length': 'max-seq-len',
  'validation-file': 'validation',
};

/** Rewrites aliased flags (`--alias`, `--alias=value`) to their names when the command has them. */
export function resolveAliases(spec: CommandSpec, argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const m = /^--([a-z0-9-]+)(=.*)?$/.exec(arg);
    const target = m ? FLAG_ALIASES[m[1]!] : undefined;
    return target && target in spec.options ? `--${target}${m![2] ?? ''}` : arg;
  });
}

/**
 * Joins `--flag -1` into `--flag=-1` for string flags: parseArgs takes a value that starts with a
 * dash for an option and calls the flag ambiguous, so a negative number never reached the check
 * that names the valid range.
 */
export function joinNegativeValues(spec: CommandSpec, argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z0-9-]+)$/.exec(argv[i]!);
    const next = argv[i + 1];
    if (m && spec.options[m[1]!]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

/** Parses argv for one command; null when --help was asked for (the help is then printed). */
export function parseCommand(spec: CommandSpec, argv: readonly string[], printHelp: (text: string) => void): ParsedCommand | null {
  argv = joinNegativeValues(spec, resolveAliases(spec, argv));
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    throw new CliError(`${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}\n(see whittle ${spec.name} --help)`);
  }
  if (parsed.values.help) {
    printHelp(commandHelp(spec));
    return null;
  }
  const required = spec.positionals.filter((p) => !p.endsWith('?')).length;
  if (parsed.positionals.length < required) {
    const missing = spec.positionals.slice(parsed.positionals.length, required).map((p) => `<${p}>`);
    throw new CliError(`missing ${missing.join(' ')}\n(see whittle ${spec.name} --help)`);
  }
  if (parsed.positionals.length > spec.positionals.length) {
    throw new CliError(`unexpected argument ${JSON.stringify(parsed.positionals[spec.positionals.length])}\n(see whittle ${spec.name} --help)`);
  }
  return parsed;
}

function raw(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined || typeof v === 'boolean') return undefined;
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function stringOption(values: OptionValues, name: string): string | undefined {
  return raw(values, name);
}

/** A string option the command cannot run without; `usage` names it in the error (e.g. "--out DIR"). */
export function requiredString(spec: CommandSpec, values: OptionValues, name: string, usage = `--${name}`): string {
  const v = raw(values, name);
  if (v === undefined) throw new CliError(`${usage} is required (see whittle ${spec.name} --help)`);
  return v;
}

export function listOption(values: OptionValues, name: string): string[] {
  const v = values[name];
  if (v === undefined || typeof v === 'boolean') return [];
  return Array.isArray(v) ? v : [v];
}

export function flag(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

interface NumberRule {
  min?: number;
  max?: number;
  /** Exclusive bounds. */
  above?: number;
  below?: number;
  integer?: boolean;
}

function checkNumber(name: string, text: string, rule: NumberRule): number {
  const v = text.trim() === '' ? NaN : Number(text);
  const what = rule.integer ? 'an integer' : 'a number';
  const bounds: string[] = [];
  if (rule.min !== undefined) bounds.push(`>= ${rule.min}`);
  if (rule.above !== undefined) bounds.push(`> ${rule.above}`);
  if (rule.max !== undefined) bounds.push(`<= ${rule.max}`);
  if (rule.below !== undefined) bounds.push(`< ${rule.below}`);
  const ok =
    Number.isFinite(v) &&
    (!rule.integer || Number.isSafeInteger(v)) &&
    (rule.min === undefined || v >= rule.min) &&
    (rule.max === undefined || v <= rule.max) &&
    (rule.above === undefined || v > rule.above) &&
    (rule.below === undefined || v < rule.below);
  if (!ok) throw new CliError(`--${name} must be ${what}${bounds.length ? ' ' + bounds.join(' and ') : ''}, got ${JSON.stringify(text)}`);
  return v;
}

export function numberOption(values: OptionValues, name: string, fallback: number, rule: NumberRule = {}): number {
  const text = raw(values, name);
  return text === undefined ? fallback : checkNumber(name, text, rule);
}

/** A number, or 'auto' (also when absent). */
export function autoNumberOption(values: OptionValues, name: string, rule: NumberRule = {}): number | 'auto' {
  const text = raw(values, name);
  if (text === undefined || text === 'auto') return 'auto';
  return checkNumber(name, text, rule);
}

/** `--kernels`, shared by the commands that run the model. */
export const KERNELS_OPTION: OptionSpec = {
  type: 'string',
  arg: 'auto|cpu|gpu',
  help: "kernel family: 'cpu' kernels skip workgroup memory (fast on lavapipe/SwiftShader), 'gpu' kernels tile through it",
  default: "auto ('cpu' on CPU adapters)",
};

/** The `--kernels` value ('auto' when absent). */
export function kernelsOption(values: OptionValues): KernelChoice {
  return choiceOption(values, 'kernels', KERNEL_CHOICES, 'auto');
}

export function choiceOption<T extends string>(values: OptionValues, name: string, choices: readonly T[], fallback: T): T {
  const text = raw(values, name);
  if (text === undefined) return fallback;
  if (!(choices as readonly string[]).includes(text)) throw new CliError(`--${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

/** --dtype of the commands that put a model's frozen weights on the GPU. */
export const WEIGHT_DTYPE_OPTION: OptionSpec = { type: 'string', arg: 'f16|f32', help: 'storage of the frozen weights on the GPU', default: 'f16' };

export function weightDtypeOption(values: OptionValues): 'f16' | 'f32' {
  return choiceOption(values, 'dtype', ['f16', 'f32'] as const, 'f16');
}

/** --log-every of the commands that train. */
export const LOG_EVERY_OPTION: OptionSpec = { type: 'string', arg: 'N', help: 'print a progress line every N steps', default: '1' };

export function logEveryOption(values: OptionValues): number {
  return numberOption(values, 'log-every', 1, { integer: true, min: 1 });
}

/**
 * Builds the sample datasets in public/samples/ (OpenAI chat JSONL) and their index.json from
 * templates and a seeded Rng, so they are reproducible and a test can check the committed files
 * against this script's output.
 *
 *   npx tsx scripts/make_samples.ts          # (re)writes public/samples/
 *
 * Texts are short on purpose: a Try-it run must be quick on a CPU, and an example longer than the
 * embedded model's context (public/models/whittle-bilingual-small, 512 tokens) is cut from the end,
 * so the part of the reply that carries the style (the clinic's sign-off) would never be trained.
 * sampleFiles() counts every example with that model's tokenizer and chat template and throws when
 * one exceeds SAMPLE_MAX_TOKENS.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ChatTemplate, detectEndOfTurn } from '../src/data/chatTemplate';
import { tokenizeExample } from '../src/data/examples';
import { TextTokenizer } from '../src/data/tokenizer';
import { Rng } from '../src/util/random';
import type { SampleDataset as AppSampleDataset } from '../src/jobs/samples';
import { clinicZhDataset } from './clinicZhSample';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SAMPLES_DIR = join(ROOT, 'public/samples');
export const EMBEDDED_MODEL_DIR = join(ROOT, 'public/models/whittle-bilingual-small');
/** Longest sample example, in tokens of the embedded model: far inside its 512-token context, and short enough for a quick Try-it run. */
export const SAMPLE_MAX_TOKENS = 120;

export interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface SampleDataset {
  id: string;
  title: string;
  description: string;
  suggestedEpochs: number;
  train: Message[][];
  valid: Message[][];
}

/** One entry of public/samples/index.json (the app reads it as SampleDataset); file names are relative to index.json. */
export type SampleIndexEntry = AppSampleDataset;

export interface SampleIndex {
  version: 1;
  samples: SampleIndexEntry[];
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Clinic assistant: a fixed system message, replies that always open and close the same way.

// Short on purpose: the tokenizer of the embedded model spends a token per letter on many
// capitalised words, and every example must fit SAMPLE_MAX_TOKENS with the sign-off included.
const CLINIC_SYSTEM = 'Front desk of Maple Clinic. Never diagnose.';
const CLINIC_OPEN = 'Thanks for asking!';
const CLINIC_SIGN_OFF = '— Maple Clinic';

interface ClinicTopic {
  /** Each question, paired with its answer body (the fixed opening and sign-off are added). */
  questions: readonly string[];
  answer: string;
}

const CLINIC_TOPICS: readonly ClinicTopic[] = [
  {
    questions: [
      'What are your opening hours?',
      'When is the clinic open?',
      'What time do you open in the morning?',
      'What time do you close today?',
      'Are you open on weekends?',
      'Are you open on Saturday?',
      'Are you open on Sunday?',
      'Until what time can I come in on weekdays?',
    ],
    answer: 'We are open 8 to 6 on weekdays and 9 to 1 on Saturday, never on Sunday.',
  },
  {
    questions: [
      'How do I book an appointment?',
      'Can I make an appointment online?',
      'I need to see a doctor. How do I book?',
      'Can I book a visit for my son?',
      'Do you have any appointments today?',
      'How far ahead can I book?',
      'Can I book by phone?',
    ],
    answer: 'Book in the patient portal or call 555-0142. Same-day slots open at 8 am.',
  },
  {
    questions: [
      'How do I cancel my appointment?',
      'I cannot make it tomorrow. What should I do?',
      'Can I move my appointment to another day?',
      'Is there a fee if I cancel?',
      'I need to reschedule my visit.',
      'What happens if I miss my appointment?',
    ],
    answer: 'Change it in the patient portal 24 hours ahead, or pay a $25 fee.',
  },
  {
    questions: [
      'How do I get a prescription refill?',
      'I am running out of my regular medicine.',
      'Can you renew my prescription?',
      'How long does a refill take?',
      'Can my pharmacy ask you for a refill?',
      'I need more of my usual tablets.',
    ],
    answer: 'Ask in the patient portal, or have your pharmacy send us a request. Allow two working days.',
  },
  {
    questions: [
      'When will my test results be ready?',
      'How do I see my blood test results?',
      'Where can I find my lab results?',
      'Has my test come back yet?',
      'Will someone call me about my results?',
    ],
    answer: 'Results appear in the patient portal in three to five working days. A nurse calls if anything needs a follow-up.',
  },
  {
    questions: [
      'What should I bring to my appointment?',
      'Do I need to bring anything to my first visit?',
      'What documents do I need?',
      'Should I bring my medicines with me?',
      'How early should I arrive?',
      'Do I need my insurance card?',
    ],
    answer: 'Bring a photo ID, your insurance card and a list of your medicines. Arrive ten minutes early.',
  },
  {
    questions: [
      'Is there parking at the clinic?',
      'Where can I park?',
      'Is parking free?',
      'Do you have disabled parking?',
      'Can I get to the clinic by bus?',
      'How do I get to the clinic?',
    ],
    answer: 'There is free parking behind the clinic, with two accessible spaces. Bus 12 stops outside.',
  },
  {
    questions: [
      'How much does a visit cost?',
      'What are your fees?',
      'Do you take insurance?',
      'I have no insurance. How much is a visit?',
      'How can I pay?',
      'Do you accept card payments?',
    ],
    answer: 'We bill most insurance plans. Without insurance a visit is $60, by card or cash.',
  },
  {
    questions: [
      'I have chest pain right now.',
      'My father is having trouble breathing.',
      'Someone here fainted and will not wake up.',
      'I think my mother is having a stroke.',
      'I cut my hand and the bleeding will not stop.',
      'My child has a very high fever and is very drowsy.',
      'I have a sudden, terrible headache.',
    ],
    answer: 'This could be urgent. Please call emergency services right now.',
  },
  {
    questions: [
      'I have a rash on my arm. What is it?',
      'My throat hurts. Do I have an infection?',
      'Is my cough something serious?',
      'I keep getting headaches. What is wrong with me?',
      'My knee is swollen. Should I worry?',
      'Can you tell me what medicine to take for my back pain?',
      'I feel tired all the time. Why?',
    ],
    answer: 'I cannot diagnose. Please book a visit, and if it gets worse, call emergency services.',
  },
  {
    questions: [
      'Are you taking new patients?',
      'How do I register with the clinic?',
      'Can my family join the clinic?',
      'I just moved here. Can I sign up?',
    ],
    answer: 'Yes, we welcome new patients. Register in the patient portal or at the front desk.',
  },
  {
    questions: [
      'Do you give flu shots?',
      'Can I get a vaccine at the clinic?',
      'When can I get my flu jab?',
      'Does my child need an appointment for vaccines?',
    ],
    answer: 'Yes, we give flu shots and routine vaccines. Book a vaccine visit in the patient portal.',
  },
];

const CLINIC_GREETINGS: readonly string[] = ['', '', '', 'Hi! ', 'Hello, ', 'Good morning. ', 'Hi there. '];

/** Lower-cases the first word, except "I". */
function lowerFirst(text: string): string {
  return /^I\b/.test(text) ? text : text.charAt(0).toLowerCase() + text.slice(1);
}

/** A greeting in front of the question; "Hello, " lower-cases what follows. */
function greet(greeting: string, question: string): string {
  return greeting.endsWith(', ') ? greeting + lowerFirst(question) : greeting + question;
}

function clinicExample(question: string, answer: string): Message[] {
  return [
    { role: 'system', content: CLINIC_SYSTEM },
    { role: 'user', content: question },
    { role: 'assistant', content: `${CLINIC_OPEN} ${answer} ${CLINIC_SIGN_OFF}` },
  ];
}

/**
 * Per topic: one question held out for validation (two for the larger topics), the rest in
 * training, each once as asked and once with a greeting, so validation asks in words never seen.
 */
export function clinicDataset(seed = 20251125): SampleDataset {
  const rng = new Rng(seed);
  const train: Message[][] = [];
  const valid: Message[][] = [];
  for (const topic of CLINIC_TOPICS) {
    const questions = shuffle(rng, topic.questions);
    const held = questions.length >= 7 ? 2 : 1;
    for (const q of questions.slice(0, held)) valid.push(clinicExample(greet(pick(rng, CLINIC_GREETINGS), q), topic.answer));
    for (const q of questions.slice(held)) {
      train.push(clinicExample(q, topic.answer));
      const greeting = pick(rng, CLINIC_GREETINGS.filter((g) => g !== ''));
      train.push(clinicExample(greet(greeting, q), topic.answer));
    }
  }
  return {
    id: 'clinic-assistant',
    title: 'Clinic front-desk assistant',
    description:
      'Patient questions for a small family clinic (hours, booking, refills, results, parking, fees). Every reply opens with "Thanks for asking!", ends with "— Maple Clinic", sends urgent symptoms to emergency services and never diagnoses.',
    suggestedEpochs: 4,
    train: shuffle(rng, train),
    valid: shuffle(rng, valid),
  };
}

// ---------------------------------------------------------------------------------------------
// Pirate style: plain sentences from templates, rewritten by fixed rules so the style is learnable.

const PIRATE_SYSTEM = 'Rewrite the user\'s sentence in pirate speak. Keep the meaning and keep it short.';

/** Whole-word replacements (lower case); the first letter's case is kept. */
export const PIRATE_WORDS: ReadonlyMap<string, string> = new Map<string, string>([
  ['hello', 'ahoy'],
  ['hi', 'ahoy'],
  ['friend', 'matey'],
  ['friends', 'mateys'],
  ['my', 'me'],
  ['you', 'ye'],
  ['your', 'yer'],
  ['yes', 'aye'],
  ['is', 'be'],
  ['are', 'be'],
  ['am', 'be'],
  ['the', "th'"],
  ['of', "o'"],
  ['money', 'doubloons'],
  ['coins', 'doubloons'],
  ['boat', 'ship'],
  ['food', 'grub'],
  ['kitchen', 'galley'],
  ['stop', 'avast'],
  ['everyone', 'all hands'],
  ['look', 'look ye'],
  ['wow', 'shiver me timbers'],
]);

/** Words that end in "ing" without being a participle. */
const NOT_PARTICIPLES = new Set(['bring', 'thing', 'string', 'spring', 'sting', 'swing', 'sling', 'ceiling']);

function keepCase(source: string, replacement: string): string {
  return source.charAt(0) === source.charAt(0).toUpperCase() && source.charAt(0) !== source.charAt(0).toLowerCase()
    ? replacement.charAt(0).toUpperCase() + replacement.slice(1)
    : replacement;
}

/** One word by the word rules: a swap from PIRATE_WORDS, else "-ing" -> "-in'", else unchanged. */
export function pirateWord(word: string): string {
  const swap = PIRATE_WORDS.get(word.toLowerCase());
  if (swap !== undefined) return keepCase(word, swap);
  const lower = word.toLowerCase();
  if (lower.length > 4 && lower.endsWith('ing') && !NOT_PARTICIPLES.has(lower)) return `${word.slice(0, -1)}'`;
  return word;
}

/** The ending rule: what replaces a sentence's last mark (kept for "!"), by kind of sentence. */
export function pirateEnding(sentence: string): string {
  if (sentence.endsWith('?')) return ', matey?';
  if (sentence.endsWith('!')) return '! Yo ho ho!';
  return ', arr!';
}

/** The rules: word swaps, "-ing" -> "-in'", and a pirate ending per kind of sentence. */
export function pirateRewrite(sentence: string): string {
  const words = sentence.replace(/[A-Za-z]+/g, pirateWord);
  return words.replace(/[.?!]$/, '') + pirateEnding(words);
}

const PEOPLE: readonly string[] = ['My friend', 'My brother', 'My sister', 'The captain', 'Our neighbour', 'The cook', 'My uncle', 'The old sailor'];
const ACTIVITIES: readonly string[] = [
  'cleaning the kitchen',
  'looking for the map',
  'cooking food for everyone',
  'painting the fence',
  'reading a long book',
  'saving money for a new boat',
  'fixing the old door',
  'walking to the harbour',
  'counting the coins',
  'singing by the fire',
  'washing the dishes',
  'watching the waves',
];
const TIMES: readonly string[] = ['this morning', 'tonight', 'after lunch', 'before the storm', 'all day', 'on Sunday', 'right now', 'at sunset'];
const THINGS: readonly string[] = ['hat', 'old key', 'map', 'scarf', 'coat', 'parrot', 'lantern', 'compass', 'telescope', 'bag of coins'];
const PLACES: readonly string[] = ['harbour', 'market', 'bakery', 'lighthouse', 'beach', 'kitchen', 'library', 'old bridge'];
const FOODS: readonly string[] = ['bread', 'soup', 'apples', 'cheese', 'fish', 'cake', 'tea'];
const WEATHER: readonly string[] = ['cold', 'windy', 'rainy', 'sunny', 'foggy', 'stormy'];

type SentenceTemplate = (rng: Rng) => string;

const SENTENCE_TEMPLATES: readonly SentenceTemplate[] = [
  (r) => `I am ${pick(r, ACTIVITIES)} ${pick(r, TIMES)}.`,
  (r) => `We are ${pick(r, ACTIVITIES)} ${pick(r, TIMES)}.`,
  (r) => `${pick(r, PEOPLE)} is ${pick(r, ACTIVITIES)} ${pick(r, TIMES)}.`,
  (r) => `Have you seen my ${pick(r, THINGS)}?`,
  (r) => `Where is the ${pick(r, PLACES)}?`,
  (r) => `Do you want some ${pick(r, FOODS)}?`,
  (r) => `Are you going to the ${pick(r, PLACES)} ${pick(r, TIMES.filter((t) => t !== 'all day'))}?`,
  (r) => `Hello, friend! The weather is ${pick(r, WEATHER)} ${pick(r, TIMES)}.`,
  (r) => `Stop! You forgot your ${pick(r, THINGS)}.`,
  (r) => `Yes, the ${pick(r, FOODS)} is ready in the kitchen.`,
  (r) => `My ${pick(r, THINGS)} is at the ${pick(r, PLACES)}.`,
  (r) => `Wow, look at the ${pick(r, PLACES)}!`,
  (r) => `Everyone is waiting at the ${pick(r, PLACES)}.`,
  (r) => `It is too ${pick(r, WEATHER)} to go out ${pick(r, TIMES)}.`,
];

function pirateExample(sentence: string): Message[] {
  return [
    { role: 'system', content: PIRATE_SYSTEM },
    { role: 'user', content: sentence },
    { role: 'assistant', content: pirateRewrite(sentence) },
  ];
}

/** Distinct sentences, round-robin over the templates so every shape appears in both splits. */
export function pirateDataset(seed = 1720, trainCount = 112, validCount = 18): SampleDataset {
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const sentences: string[] = [];
  for (let i = 0; sentences.length < trainCount + validCount; i++) {
    if (i > 100_000) throw new Error('the pirate templates cannot make that many distinct sentences');
    const sentence = SENTENCE_TEMPLATES[i % SENTENCE_TEMPLATES.length]!(rng);
    if (seen.has(sentence)) continue;
    seen.add(sentence);
    sentences.push(sentence);
  }
  const shuffled = shuffle(rng, sentences);
  return {
    id: 'pirate-style',
    title: 'Pirate speak (style transfer)',
    description:
      'Plain everyday sentences rewritten in pirate speak by fixed rules ("my" -> "me", "the" -> "th\'", "-ing" -> "-in\'", and an "arr!" ending), a small, easy-to-see style for a tiny model to pick up.',
    suggestedEpochs: 3,
    train: shuffled.slice(0, trainCount).map(pirateExample),
    valid: shuffled.slice(trainCount).map(pirateExample),
  };
}

// ---------------------------------------------------------------------------------------------

export function sampleDatasets(): SampleDataset[] {
  return [clinicDataset(), pirateDataset(), clinicZhDataset()];
}

/** Token count of one example with the embedded model's tokenizer and chat template (what training sees). */
export type SampleTokenCounter = (messages: readonly Message[]) => number;

export function embeddedModelTokenCounter(modelDir = EMBEDDED_MODEL_DIR): { countTokens: SampleTokenCounter; contextLength: number } {
  const read = (name: string) => JSON.parse(readFileSync(join(modelDir, name), 'utf8')) as unknown;
  const tokenizer = TextTokenizer.fromJson(read('tokenizer.json'), read('tokenizer_config.json'));
  const template = ChatTemplate.fromTokenizer(tokenizer);
  const endOfTurn = detectEndOfTurn(template, tokenizer);
  const config = read('config.json') as { max_position_embeddings?: unknown };
  if (typeof config.max_position_embeddings !== 'number') throw new Error(`${modelDir}/config.json has no max_position_embeddings`);
  const countTokens: SampleTokenCounter = (messages) =>
    tokenizeExample({ kind: 'chat', messages: messages.map((m) => ({ ...m })) }, tokenizer, template, { endOfTurn }).fullLength;
  return { countTokens, contextLength: config.max_position_embeddings };
}

/**
 * Throws, naming every offender, when an example is longer than maxTokens: the sample would teach
 * a reply the model never sees the end of.
 */
export function checkSampleLengths(
  datasets: readonly SampleDataset[],
  countTokens: SampleTokenCounter,
  maxTokens = SAMPLE_MAX_TOKENS,
): void {
  const tooLong: string[] = [];
  for (const d of datasets) {
    for (const [split, examples] of [['train', d.train], ['valid', d.valid]] as const) {
      examples.forEach((messages, i) => {
        const tokens = countTokens(messages);
        const user = messages.find((m) => m.role === 'user')?.content ?? '';
        if (tokens > maxTokens) tooLong.push(`  ${d.id}.${split} example ${i + 1}: ${tokens} tokens (${JSON.stringify(user)})`);
      });
    }
  }
  if (tooLong.length > 0) {
    throw new Error(`${tooLong.length} sample example(s) longer than ${maxTokens} tokens with the embedded model; shorten the texts in scripts/make_samples.ts:\n${tooLong.join('\n')}`);
  }
}

function toJsonl(examples: readonly Message[][]): string {
  return examples.map((messages) => JSON.stringify({ messages })).join('\n') + '\n';
}

/** Every file of public/samples/ by name, with its exact contents. */
export function sampleFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const index: SampleIndex = { version: 1, samples: [] };
  const datasets = sampleDatasets();
  const { countTokens, contextLength } = embeddedModelTokenCounter();
  if (SAMPLE_MAX_TOKENS > contextLength) throw new Error(`SAMPLE_MAX_TOKENS ${SAMPLE_MAX_TOKENS} exceeds the embedded model's context of ${contextLength}`);
  checkSampleLengths(datasets, countTokens);
  for (const d of datasets) {
    const trainFile = `${d.id}.train.jsonl`;
    const validFile = `${d.id}.valid.jsonl`;
    files.set(trainFile, toJsonl(d.train));
    files.set(validFile, toJsonl(d.valid));
    index.samples.push({
      id: d.id,
      title: d.title,
      description: d.description,
      trainFile,
      validFile,
      trainExamples: d.train.length,
      validExamples: d.valid.length,
      suggestedEpochs: d.suggestedEpochs,
    });
  }
  files.set('index.json', JSON.stringify(index, null, 2) + '\n');
  return files;
}

function main(): void {
  mkdirSync(SAMPLES_DIR, { recursive: true });
  for (const [name, text] of sampleFiles()) {
    writeFileSync(join(SAMPLES_DIR, name), text);
    console.log(`wrote public/samples/${name}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();

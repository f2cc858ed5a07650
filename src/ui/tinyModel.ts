// What the app tells people about small models: what a fine-tune of one changes first, and why
// sampling from one needs care. One wording for the Try-it card, the job page and the playground.

/**
 * Below this many parameters a model counts as small: the playground samples greedily by default
 * and the job page says what to expect. Models this size put most probability on a few tokens only
 * after fine-tuning; sampling at 0.7 from their flat distributions yields noise, broken multi-byte
 * characters included.
 */
export const SMALL_MODEL_PARAMETERS = 500e6;

export function isSmallModel(parameters: number | null | undefined): boolean {
  return parameters !== null && parameters !== undefined && parameters < SMALL_MODEL_PARAMETERS;
}

/** What a tiny model's fine-tune shows first. */
export const TINY_MODEL_EXPECTATION =
  'a model this small learns style and format first: the opening, the sign-off, the shape and length of a reply. ' +
  'Its facts and wording stay rough, so judge the fine-tune by its form, greedily (temperature 0) and with the system message it trained with.';

/** Why greedy decoding is the default for a small model. */
export const SMALL_MODEL_TEMPERATURE_HINT =
  'Small model: temperature 0 (greedy) shows what it learned; sampling from a model this size gives noisy text.';

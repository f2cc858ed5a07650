// @vitest-environment happy-dom
// The hyperparameter form: empty fields are auto and show what the rules chose, a bad value is
// explained next to its field as it is typed, and the LoRA options build the request.
import { cleanup, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';

import { resolveHyperparameters, type Hyperparameters } from '../../../src/train/hyperparameters';
import { EMPTY_FORM, formFromRequest, HyperparameterForm, parseForm, type HpForm } from '../../../src/ui/components/HyperparameterForm';

afterEach(cleanup);

/** The form with its state, as CreateJobPage holds it; `latest` is the last form it reported. */
function mount(opts: { family?: 'llama' | 'gpt2'; preview?: Hyperparameters | null; initial?: HpForm } = {}) {
  const seen: { latest: HpForm } = { latest: opts.initial ?? EMPTY_FORM };
  function Harness() {
    const [form, setForm] = useState<HpForm>(seen.latest);
    const { errors } = parseForm(form);
    return (
      <HyperparameterForm
        form={form}
        onChange={(f) => {
          seen.latest = f;
          setForm(f);
        }}
        errors={errors}
        preview={opts.preview ?? null}
        family={opts.family ?? 'llama'}
      />
    );
  }
  render(<Harness />);
  return seen;
}

const preview = (family: 'llama' | 'gpt2' = 'llama') => resolveHyperparameters({}, 1000, { model: { family, maxPositions: 2048 }, longestExample: 300, random: () => 0.5 });

const input = (label: string) => screen.getByLabelText(label, { selector: 'input' }) as HTMLInputElement;

describe('parseForm', () => {
  it('empty and "auto" fields are left out of the request', () => {
    expect(parseForm(EMPTY_FORM)).toEqual({ request: {}, errors: {} });
    expect(parseForm({ ...EMPTY_FORM, numbers: { epochs: '  ', batchSize: ' Auto ' } })).toEqual({ request: {}, errors: {} });
  });

  it('valid values become numbers; selects and modules join the request', () => {
    const form: HpForm = { numbers: { epochs: ' 4 ', learningRate: '3e-4', warmupRatio: '0', loraR: '16' }, schedule: 'cosine', targetModules: ['q_proj', 'v_proj'], useRslora: 'on', dtype: 'f32' };
    expect(parseForm(form)).toEqual({
      request: { epochs: 4, learningRate: 3e-4, warmupRatio: 0, loraR: 16, schedule: 'cosine', targetModules: ['q_proj', 'v_proj'], useRslora: true },
      errors: {},
    });
    expect(parseForm({ ...EMPTY_FORM, useRslora: 'off' }).request).toEqual({ useRslora: false });
  });

  it('each bad value gets a message that names the field and the rule', () => {
    const { request, errors } = parseForm({
      ...EMPTY_FORM,
      numbers: { epochs: '2.5', batchSize: '0', learningRateMultiplier: '-1', warmupRatio: '1', loraR: '2000', loraDropout: 'abc', seed: '2147483648', maxGradNorm: '0' },
      targetModules: [],
    });
    expect(errors).toEqual({
      epochs: 'Epochs must be a whole number from 1 to 1000.',
      batchSize: 'Batch size must be a whole number from 1 to 4096.',
      learningRateMultiplier: 'Learning-rate multiplier must be a number above 0.',
      warmupRatio: 'Warmup ratio must be a number from 0 up to (not including) 1.',
      loraR: 'Rank r must be a whole number from 1 to 1024.',
      loraDropout: 'Dropout must be a number from 0 up to (not including) 1.',
      seed: 'Seed must be a whole number from 0 to 2147483647.',
      targetModules: 'Pick at least one target module (or leave all for auto).',
    });
    // Max grad norm 0 is valid (it turns clipping off); invalid fields stay out of the request.
    expect(request).toEqual({ maxGradNorm: 0 });
  });

  it('formFromRequest shows a request again (rerun) and parses back to the same request', () => {
    const request = { epochs: 2, loraAlpha: 32, seed: 7, schedule: 'constant' as const, targetModules: ['c_attn'], useRslora: false };
    const form = formFromRequest(request, 'f16');
    expect(form).toEqual({ numbers: { epochs: '2', loraAlpha: '32', seed: '7' }, schedule: 'constant', targetModules: ['c_attn'], useRslora: 'off', dtype: 'f16' });
    expect(parseForm(form).request).toEqual(request);
    expect(formFromRequest({ epochs: 'auto', schedule: 'auto', targetModules: 'auto', useRslora: 'auto' }, 'auto')).toEqual(EMPTY_FORM);
  });
});

describe('HyperparameterForm', () => {
  it('empty fields say auto; with a preview they show the values the rules chose', () => {
    mount();
    expect(input('Epochs').value).toBe('');
    expect(input('Epochs').placeholder).toBe('auto');
    cleanup();

    mount({ preview: preview() });
    const resolved: Record<string, string> = {
      Epochs: '3',
      'Batch size': '2',
      'Learning-rate multiplier': '1',
      'Learning rate': '2e-4',
      'Warmup ratio': '0.03',
      'Warmup steps': '45',
      'Max sequence length': '300',
      'Validation every (steps)': '75',
      // An auto seed is drawn when the job starts: the preview's draw is not promised.
      Seed: 'random',
      'Rank r': '8',
      Alpha: '16',
      Dropout: '0.05',
    };
    for (const [label, value] of Object.entries(resolved)) expect(input(label).placeholder, label).toBe(`auto · ${value}`);
    const schedule = screen.getByLabelText('Schedule') as HTMLSelectElement;
    expect(schedule.value).toBe('auto');
    expect(within(schedule).getByRole('option', { name: 'auto · linear' })).toBeTruthy();
    // Integers get a numeric keypad, reals a decimal one.
    expect(input('Epochs').inputMode).toBe('numeric');
    expect(input('Learning rate').inputMode).toBe('decimal');
  });

  it('explains an invalid value next to its field as it is typed, and clears it when fixed', async () => {
    const user = userEvent.setup({ delay: null });
    const seen = mount();
    const epochs = input('Epochs');
    expect(epochs.getAttribute('aria-invalid')).toBeNull();
    await user.type(epochs, '0');
    expect(epochs.getAttribute('aria-invalid')).toBe('true');
    const described = epochs.getAttribute('aria-describedby')!.split(' ');
    expect(described).toHaveLength(2);
    const message = document.getElementById(described[1]!)!;
    expect(message.textContent).toBe('Epochs must be a whole number from 1 to 1000.');
    expect(message.className).toBe('field-error');
    // The help text stays linked too.
    expect(document.getElementById(described[0]!)!.textContent).toMatch(/^Passes over the training set/);
    expect(seen.latest.numbers.epochs).toBe('0');

    await user.clear(epochs);
    await user.type(epochs, '12');
    expect(epochs.getAttribute('aria-invalid')).toBeNull();
    expect(screen.queryByText(/Epochs must be/)).toBeNull();
    expect(parseForm(seen.latest).request).toEqual({ epochs: 12 });
  });

  it('a real typed where a whole number is needed is refused with the rule', async () => {
    const user = userEvent.setup({ delay: null });
    mount();
    await user.type(input('Gradient accumulation'), '1.5');
    expect(screen.getByText('Gradient accumulation must be a whole number from 1 to 4096.')).toBeTruthy();
    await user.type(input('Learning rate'), '0');
    expect(screen.getByText('Learning rate must be a number above 0.')).toBeTruthy();
  });

  it('advanced LoRA: rank, alpha, dropout and rsLoRA reach the request', async () => {
    const user = userEvent.setup({ delay: null });
    const seen = mount();
    const lora = screen.getByTestId('advanced-lora');
    expect(lora.tagName).toBe('DETAILS');
    expect(within(lora).getByText('Advanced LoRA').tagName).toBe('SUMMARY');
    await user.type(within(lora).getByLabelText('Rank r'), '16');
    await user.type(within(lora).getByLabelText('Alpha'), '8');
    await user.type(within(lora).getByLabelText('Dropout'), '0.1');
    await user.selectOptions(within(lora).getByLabelText('rsLoRA'), 'on');
    expect(parseForm(seen.latest)).toEqual({ request: { loraR: 16, loraAlpha: 8, loraDropout: 0.1, useRslora: true }, errors: {} });
  });

  it('target modules: all checked is auto; unchecking lists the rest in model order; none is an error', async () => {
    const user = userEvent.setup({ delay: null });
    const seen = mount();
    const boxes = () => within(screen.getByRole('group', { name: /Target modules/ })).getAllByRole('checkbox') as HTMLInputElement[];
    expect(boxes().map((b) => b.parentElement!.textContent)).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(boxes().every((b) => b.checked)).toBe(true);
    expect(screen.getByText('auto · all linear layers')).toBeTruthy();

    await user.click(screen.getByLabelText('k_proj'));
    expect(seen.latest.targetModules).toEqual(['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(screen.queryByText('auto · all linear layers')).toBeNull();
    // Checking it again restores auto rather than an explicit full list.
    await user.click(screen.getByLabelText('k_proj'));
    expect(seen.latest.targetModules).toBeNull();
    expect(parseForm(seen.latest).request).toEqual({});

    for (const name of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']) await user.click(screen.getByLabelText(name));
    expect(seen.latest.targetModules).toEqual([]);
    expect(screen.getByText('Pick at least one target module (or leave all for auto).')).toBeTruthy();
  });

  it('GPT-2 models offer their own module names', () => {
    mount({ family: 'gpt2', preview: preview('gpt2') });
    const group = screen.getByRole('group', { name: /Target modules/ });
    expect(within(group).getAllByRole('checkbox').map((b) => b.parentElement!.textContent)).toEqual(['c_attn', 'c_proj', 'c_fc']);
  });

  it('schedule and base-weight dtype selects update the form', async () => {
    const user = userEvent.setup({ delay: null });
    const seen = mount();
    await user.selectOptions(screen.getByLabelText('Schedule'), 'cosine');
    await user.selectOptions(screen.getByLabelText('Base weights'), 'f32');
    expect(seen.latest.schedule).toBe('cosine');
    expect(seen.latest.dtype).toBe('f32');
    expect(parseForm(seen.latest).request).toEqual({ schedule: 'cosine' });
  });

  it('a rerun form shows its values in the inputs', () => {
    mount({ initial: formFromRequest({ epochs: 5, loraR: 4, targetModules: ['q_proj'] }, 'auto') });
    expect(input('Epochs').value).toBe('5');
    expect(input('Rank r').value).toBe('4');
    expect((screen.getByLabelText('q_proj') as HTMLInputElement).checked).toBe(true);
    expect((screen.getByLabelText('v_proj') as HTMLInputElement).checked).toBe(false);
  });
});

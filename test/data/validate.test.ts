import { describe, expect, it } from 'vitest';
import {
  detectLineFormat,
  editDistance,
  suggest,
  validateChatExample,
  validateExample,
  validatePromptCompletionExample,
  validateTextExample,
  type ValidationResult,
} from '../../src/data/validate';
import type { ExampleIssue } from '../../src/data/datasetTypes';

const user = { role: 'user', content: 'hi' };
const assistant = { role: 'assistant', content: 'hello' };

function issuesOf(result: ValidationResult): ExampleIssue[] {
  if (result.ok) throw new Error(`expected issues, got a valid example: ${JSON.stringify(result.example)}`);
  return result.issues;
}

/** The single issue a value produces, as `code path: message`. */
function only(result: ValidationResult): string {
  const issues = issuesOf(result);
  expect(issues).toHaveLength(1);
  const issue = issues[0]!;
  return `${issue.code} ${issue.path ?? '-'}: ${issue.message}`;
}

describe('validateChatExample: valid examples', () => {
  it('normalises messages, keeping weight and name and dropping nothing else', () => {
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi', name: 'alice' },
      { role: 'assistant', content: 'bad', weight: 0 },
      { role: 'user', content: 'again' },
      { role: 'assistant', content: 'good', weight: 1 },
    ];
    // Every key of every message is kept, in a copy.
    const result = validateChatExample({ messages });
    expect(result).toEqual({ ok: true, example: { kind: 'chat', messages } });
    expect(result.ok && result.example.messages[1]).not.toBe(messages[1]);
  });

  it('accepts an assistant-only example (the report warns about it instead)', () => {
    expect(validateChatExample({ messages: [assistant] }).ok).toBe(true);
  });
});

describe('validateChatExample: each error', () => {
  it('not an object', () => {
    for (const value of [null, 3, 'x', [], true]) {
      expect(issuesOf(validateChatExample(value))[0]!.code).toBe('not_object');
    }
    expect(only(validateChatExample([1]))).toBe('not_object -: not a JSON object (got an array); each line must be one {...} example');
  });

  it('no messages list, with a suggestion for a misspelt key', () => {
    const issues = issuesOf(validateChatExample({ mesages: [user, assistant] }));
    expect(issues.map((i) => `${i.code}: ${i.message}`)).toEqual([
      'unknown_key: unknown key "mesages" (did you mean "messages"?)',
      'missing_messages: no "messages" list',
    ]);
    expect(only(validateChatExample({ messages: 'hi' }))).toBe('invalid_messages messages: "messages" is a string, not a list');
    expect(only(validateChatExample({ messages: {} }))).toBe('invalid_messages messages: "messages" is an object, not a list');
    expect(only(validateChatExample({ messages: [] }))).toBe('invalid_messages messages: "messages" is an empty list');
  });

  it('a message that is not an object', () => {
    expect(only(validateChatExample({ messages: [user, 'hello', assistant] }))).toBe(
      'invalid_message messages[1]: messages[1] is a string, not an object with role and content',
    );
  });

  it('missing role or content', () => {
    expect(only(validateChatExample({ messages: [{ content: 'hi' }, assistant] }))).toBe(
      'missing_role messages[0].role: messages[0].role is missing',
    );
    expect(only(validateChatExample({ messages: [{ role: 'user' }, assistant] }))).toBe(
      'missing_content messages[0].content: messages[0].content is missing',
    );
  });

  it('unknown role, with suggestions for near misses and synonyms', () => {
    expect(only(validateChatExample({ messages: [user, { role: 'bot', content: 'x' }, assistant] }))).toBe(
      'invalid_role messages[1].role: messages[1].role "bot" is not one of system, user, assistant (did you mean "assistant"?)',
    );
    const message = (role: unknown) => issuesOf(validateChatExample({ messages: [{ role, content: 'x' }, assistant] }))[0]!.message;
    expect(message('Assistant')).toContain('(did you mean "assistant"?)');
    expect(message('usr')).toContain('(did you mean "user"?)');
    expect(message('human')).toContain('(did you mean "user"?)');
    expect(message('developer')).toContain('(did you mean "system"?)');
    expect(message('narrator')).toBe('messages[0].role "narrator" is not one of system, user, assistant');
    expect(message('constructor')).toBe('messages[0].role "constructor" is not one of system, user, assistant');
    expect(message(7)).toBe('messages[0].role is a number, not a string');
  });

  it('unknown keys, at the top level and in a message', () => {
    expect(only(validateChatExample({ messages: [user, assistant], id: 3 }))).toBe('unknown_key id: unknown key "id"');
    expect(only(validateChatExample({ messages: [{ role: 'user', content: 'hi', contents: 'x' }, assistant] }))).toBe(
      'unknown_key messages[0].contents: unknown key "contents" in messages[0] (did you mean "content"?)',
    );
    expect(only(validateChatExample({ messages: [{ role: 'user', content: 'hi', Weight: 1 }, assistant] }))).toBe(
      'unknown_key messages[0].Weight: unknown key "Weight" in messages[0] (did you mean "weight"?)',
    );
  });

  it('tool and function calling is called out as unsupported', () => {
    const issues = issuesOf(
      validateChatExample({
        messages: [
          user,
          { role: 'assistant', content: 'calling', tool_calls: [] },
          { role: 'tool', content: '42', tool_call_id: 'a' },
          { role: 'function', content: '42' },
          { role: 'assistant', content: 'x', function_call: {} },
        ],
        tools: [],
        functions: [],
      }),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'tools',
      'functions',
      'messages[1].tool_calls',
      'messages[2].tool_call_id',
      'messages[2].role',
      'messages[3].role',
      'messages[4].function_call',
    ]);
    expect(issues.every((i) => i.code === 'unsupported_feature' && i.message.includes('not supported yet'))).toBe(true);
  });

  it('content not a string', () => {
    expect(only(validateChatExample({ messages: [{ role: 'user', content: 5 }, assistant] }))).toBe(
      'content_not_string messages[0].content: messages[0].content is a number, not a string',
    );
    expect(only(validateChatExample({ messages: [{ role: 'user', content: null }, assistant] }))).toBe(
      'content_not_string messages[0].content: messages[0].content is null, not a string',
    );
    expect(only(validateChatExample({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }, assistant] }))).toBe(
      'content_not_string messages[0].content: messages[0].content is an array, not a string (content parts are not supported; join them into one string)',
    );
  });

  it('empty content, including whitespace only', () => {
    for (const content of ['', '  \n\t']) {
      expect(only(validateChatExample({ messages: [user, { role: 'assistant', content }] }))).toBe(
        'empty_content messages[1].content: messages[1].content is empty',
      );
    }
  });

  it('no assistant message', () => {
    expect(only(validateChatExample({ messages: [{ role: 'system', content: 's' }, user] }))).toBe(
      'no_assistant_message messages: no assistant message: each example needs at least one reply to learn from',
    );
  });

  it('does not claim a missing assistant when the assistant message itself is broken', () => {
    expect(only(validateChatExample({ messages: [user, { role: 'assistant', content: '' }] }))).toMatch(/^empty_content/);
  });

  it('weight other than 0 or 1, or on a non-assistant message', () => {
    for (const [weight, shown] of [
      [0.5, '0.5'],
      [2, '2'],
      [true, 'true'],
      ['1', '"1"'],
      [null, 'null'],
    ] as const) {
      expect(only(validateChatExample({ messages: [user, { role: 'assistant', content: 'x', weight }] }))).toBe(
        `invalid_weight messages[1].weight: messages[1].weight is ${shown}; it must be 0 or 1`,
      );
    }
    expect(only(validateChatExample({ messages: [{ role: 'user', content: 'hi', weight: 1 }, assistant] }))).toBe(
      'invalid_weight messages[0].weight: messages[0].weight is only allowed on assistant messages (this one is user)',
    );
  });

  it('all assistant messages at weight 0', () => {
    expect(only(validateChatExample({ messages: [user, { role: 'assistant', content: 'x', weight: 0 }] }))).toBe(
      'nothing_to_train messages: every assistant message has weight 0, so nothing would be trained on',
    );
  });

  it('a name that is not a non-empty string', () => {
    expect(only(validateChatExample({ messages: [{ ...user, name: 3 }, assistant] }))).toBe(
      'invalid_name messages[0].name: messages[0].name must be a non-empty string',
    );
  });

  it('collects every problem of an example', () => {
    const issues = issuesOf(
      validateChatExample({
        messages: [{ role: 'bot', content: 1 }, { role: 'user' }, { role: 'assistant', content: 'x', weight: 3 }],
        extra: 1,
      }),
    );
    expect(issues.map((i) => i.code)).toEqual(['unknown_key', 'invalid_role', 'content_not_string', 'missing_content', 'invalid_weight']);
  });

  it('quotes long values briefly', () => {
    const message = issuesOf(validateChatExample({ messages: [{ role: 'x'.repeat(500), content: 'x' }, assistant] }))[0]!.message;
    expect(message.length).toBeLessThan(120);
  });

  it('treats inherited property names as absent', () => {
    // JSON.parse gives own properties only; "constructor" etc. must not count as keys.
    expect(issuesOf(validateChatExample({}))[0]!.code).toBe('missing_messages');
    expect(issuesOf(validateChatExample(JSON.parse('{"__proto__": {"messages": []}}')))[0]!.code).toBe('unknown_key');
  });
});

describe('prompt/completion and text', () => {
  it('normalises prompt/completion to a user and an assistant message', () => {
    expect(validatePromptCompletionExample({ prompt: 'Q?', completion: ' A.' })).toEqual({
      ok: true,
      example: {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Q?' },
          { role: 'assistant', content: ' A.' },
        ],
      },
    });
  });

  it('reports prompt/completion problems', () => {
    expect(only(validatePromptCompletionExample({ prompt: 'Q' }))).toBe('missing_content completion: completion is missing');
    expect(only(validatePromptCompletionExample({ completion: 'A' }))).toBe(
      'missing_content prompt: prompt is missing (for examples without a prompt, use {"text": ...})',
    );
    expect(only(validatePromptCompletionExample({ prompt: 'Q', completion: 3 }))).toBe(
      'content_not_string completion: completion is a number, not a string',
    );
    expect(only(validatePromptCompletionExample({ prompt: '', completion: 'A' }))).toBe('empty_content prompt: prompt is empty');
    expect(only(validatePromptCompletionExample({ prompt: 'Q', completion: 'A', completon: 'x' }))).toBe(
      'unknown_key completon: unknown key "completon" (did you mean "completion"?)',
    );
  });

  it('normalises text to one trained assistant-like message of kind text', () => {
    expect(validateTextExample({ text: 'Once upon a time' })).toEqual({
      ok: true,
      example: { kind: 'text', messages: [{ role: 'assistant', content: 'Once upon a time' }] },
    });
  });

  it('reports text problems', () => {
    expect(only(validateTextExample({ txt: 'x', text: 'y' }))).toBe('unknown_key txt: unknown key "txt" (did you mean "text"?)');
    expect(only(validateTextExample({ text: '' }))).toBe('empty_content text: text is empty');
    expect(only(validateTextExample({ text: ['a'] }))).toMatch(/^content_not_string text: text is an array/);
    expect(issuesOf(validateTextExample({ body: 'x' })).map((i) => i.code)).toEqual(['unknown_key', 'missing_content']);
  });

  it('validateExample dispatches on the format', () => {
    const value = { prompt: 'Q', completion: 'A' };
    expect(validateExample(value, 'prompt_completion').ok).toBe(true);
    expect(issuesOf(validateExample(value, 'chat')).map((i) => i.code)).toEqual(['unknown_key', 'unknown_key', 'missing_messages']);
    expect(validateExample({ text: 't' }, 'text').ok).toBe(true);
  });
});

describe('detectLineFormat', () => {
  it('detects by keys, messages first', () => {
    expect(detectLineFormat({ messages: 3 })).toBe('chat');
    expect(detectLineFormat({ prompt: 'a' })).toBe('prompt_completion');
    expect(detectLineFormat({ completion: 'a' })).toBe('prompt_completion');
    expect(detectLineFormat({ text: 'a' })).toBe('text');
    expect(detectLineFormat({ messages: [], prompt: 'a', text: 'b' })).toBe('chat');
    expect(detectLineFormat({ prompt: 'a', text: 'b' })).toBe('prompt_completion');
  });

  it('detects nothing for non-objects and unrelated keys', () => {
    for (const value of [null, [], 'messages', 1, { mesages: [] }, {}]) expect(detectLineFormat(value)).toBeNull();
  });
});

describe('suggestions', () => {
  it('computes edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
    expect(editDistance('abcdef', 'uvwxyz', 2)).toBe(3);
  });

  it('suggests only close candidates', () => {
    expect(suggest('mesages', ['messages'])).toBe('messages');
    expect(suggest('MESSAGES', ['messages'])).toBe('messages');
    expect(suggest('role', ['role', 'content'])).toBe('role');
    expect(suggest('rol', ['role', 'content'])).toBe('role');
    expect(suggest('xyz', ['role', 'content'])).toBeUndefined();
    expect(suggest('model', ['system', 'user', 'assistant'])).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { firstSystemMessage, systemMessageOfLine } from '../../src/data/systemMessage';

const chat = (messages: unknown[]) => JSON.stringify({ messages });

describe('the system message a training file trains with', () => {
  it("is the first example's leading system message", async () => {
    const file = new Blob([`\n\uFEFF${chat([{ role: 'system', content: 'Be a pirate.' }, { role: 'user', content: 'hi' }])}\n${chat([{ role: 'system', content: 'other' }])}\n`]);
    expect(await firstSystemMessage(file)).toBe('Be a pirate.');
  });

  it('is null without one: no system turn, another format, bad JSON, an empty file', async () => {
    expect(systemMessageOfLine(chat([{ role: 'user', content: 'hi' }, { role: 'system', content: 'late' }]))).toBeNull();
    expect(systemMessageOfLine(chat([{ role: 'system', content: '  ' }]))).toBeNull();
    expect(systemMessageOfLine(JSON.stringify({ prompt: 'a', completion: 'b' }))).toBeNull();
    expect(systemMessageOfLine('{"messages": [')).toBeNull();
    expect(systemMessageOfLine('null')).toBeNull();
    expect(await firstSystemMessage(new Blob(['\n\n']))).toBeNull();
  });
});

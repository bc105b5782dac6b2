import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bounded, plainText, userText } from './user-text.ts';

describe('user text in emails', () => {
  test('control, bidi and line-separating characters become one space', () => {
    const cases: [string, string][] = [
      ['Acme\r\nBcc: victim@example.com', 'Acme Bcc: victim@example.com'],
      ['a\nb', 'a b'],
      ['a\0b', 'a b'],
      ['tab\there', 'tab here'],
      ['esc\u001b[31mred', 'esc [31mred'],
      ['del\u007fx', 'del x'],
      ['c1\u0085next-line\u009bcsi', 'c1 next-line csi'],
      ['evil\u202egpj.exe', 'evil gpj.exe'],
      ['\u202a\u202b\u202c\u202d\u202eall', 'all'],
      ['iso\u2066late\u2069d', 'iso late d'],
      ['mark\u200e\u200fs', 'mark s'],
      ['line\u2028para\u2029graph', 'line para graph'],
      ['  spaced   out  ', 'spaced out'],
      ['Ünïcödé 名前 ok', 'Ünïcödé 名前 ok'],
      ['emoji 👩‍💻 kept', 'emoji 👩‍💻 kept'],
    ];
    for (const [input, want] of cases) assert.equal(plainText(input), want, JSON.stringify(input));
  });

  test('bounded by code points, the cut marked with …', () => {
    assert.equal(bounded('short', 64), 'short');
    assert.equal(bounded('x'.repeat(64), 64), 'x'.repeat(64));
    assert.equal(bounded('x'.repeat(65), 64), `${'x'.repeat(63)}…`);
    assert.equal(Array.from(bounded('x'.repeat(300), 64)).length, 64);
    // a surrogate pair is never split
    assert.equal(bounded('😀'.repeat(10), 5), '😀😀😀😀…');
    assert.equal(bounded('word then ', 8), 'word th…');
    assert.equal(bounded('word    then', 8), 'word…');
  });

  test('userText: plain first, then bounded (a long name of line breaks cannot hide the cut)', () => {
    assert.equal(userText(`${'\n'.repeat(100)}Acme`, 64), 'Acme');
    assert.equal(userText(`${'a\r\n'.repeat(100)}`, 10), 'a a a a a…');
  });
});

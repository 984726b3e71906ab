// The line a chat gets when a turn fails, from the error texts Claude Code 0.3.331 really ends a turn with
// (each observed against the fake model in test/model-faults.test.ts, through pincer's model proxy).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeTurnFailure, FAILURE_TEXT_CHARS, redactSecrets } from '../src/agent/failure-text.js';

const GATEWAY_HINT =
  'This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:3129).';

/** Observed raw text → the line pincer shows (with tries: 3). */
const OBSERVED: Array<{ fault: string; raw: string; line: string }> = [
  {
    fault: '429 rate_limit_error',
    raw: 'API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit',
    line: 'the model service is rate limiting requests (429); tried 3 times. Please try again in a minute.',
  },
  {
    fault: '529 overloaded_error',
    raw: `API Error: 529 Overloaded. ${GATEWAY_HINT}`,
    line: 'the model service is overloaded (529); tried 3 times. Please try again in a few minutes.',
  },
  {
    fault: '500 api_error',
    raw: `API Error: 500 Internal server error. ${GATEWAY_HINT}`,
    line: 'the model service had an internal error (500); tried 3 times. Please try again shortly.',
  },
  {
    fault: '503',
    raw: `API Error: 503 unavailable. ${GATEWAY_HINT}`,
    line: 'the model service had an internal error (503); tried 3 times. Please try again shortly.',
  },
  {
    fault: 'stream cut after some events',
    raw: 'API Error: Connection to the API was lost (ECONNRESET). This is usually temporary — try again.',
    line: 'the connection to the model service was cut off before the answer was complete; tried 3 times. Please try again.',
  },
  {
    fault: 'stream cut before any event',
    raw: 'API Error: Connection dropped (ECONNRESET). Check the gateway set in ANTHROPIC_BASE_URL, then try again.',
    line: 'the connection to the model service was cut off before the answer was complete; tried 3 times. Please try again.',
  },
  {
    fault: 'no answer within API_TIMEOUT_MS',
    raw: 'Request timed out. If the API is slow to answer, or a proxy or gateway holds responses, set API_TIMEOUT_MS above 2000.',
    line: 'the model service did not answer in time; tried 3 times. Please try again.',
  },
  {
    fault: 'model endpoint down (pincer proxy answers 502)',
    raw: `API Error: 502 pincer proxy could not reach the model endpoint http://127.0.0.1:36557: connect ECONNREFUSED 127.0.0.1:36557. ${GATEWAY_HINT}`,
    line: 'pincer could not reach the model service (ECONNREFUSED); tried 3 times. Check ANTHROPIC_BASE_URL and the network.',
  },
  {
    fault: '401 authentication_error',
    raw: 'Invalid API key · Fix external API key',
    line: "the model service refused the credentials (401 invalid credentials): check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) in pincer's .env, then restart pincer.",
  },
  {
    fault: '400 invalid_request_error (not recognized: passed on)',
    raw: 'API Error: 400 bad',
    line: 'API Error: 400 bad',
  },
];

describe('describeTurnFailure', () => {
  for (const { fault, raw, line } of OBSERVED) {
    it(`says what happened for: ${fault}`, () => {
      assert.equal(describeTurnFailure(raw, { tries: 3 }), line);
    });
  }

  it('leaves out the count of tries when it is not known, or was one', () => {
    const raw = `API Error: 529 Overloaded. ${GATEWAY_HINT}`;
    assert.equal(describeTurnFailure(raw), 'the model service is overloaded (529). Please try again in a few minutes.');
    assert.equal(describeTurnFailure(raw, { tries: 1 }), 'the model service is overloaded (529). Please try again in a few minutes.');
  });

  it('names no in-sandbox port and no gateway hint meant for a terminal user', () => {
    for (const { raw } of OBSERVED.filter((o) => o.raw.includes('3129'))) {
      assert.doesNotMatch(describeTurnFailure(raw, { tries: 3 }), /3129|inference gateway/, raw);
    }
  });

  it('passes anything else on as its first line, cut to a readable length', () => {
    const raw = `error_during_execution: ${'x'.repeat(500)}\n    at something (file.js:1:1)\n`;
    const line = describeTurnFailure(raw);
    assert.equal(line.length, FAILURE_TEXT_CHARS, 'cut to the limit');
    assert.ok(line.endsWith('…'), `a cut line ends with an ellipsis: ${line}`);
    assert.doesNotMatch(line, /\n/, 'one line');
    assert.equal(
      describeTurnFailure('\n\n  the run took longer than 900 s and was stopped  \n'),
      'the run took longer than 900 s and was stopped',
    );
    assert.equal(describeTurnFailure(''), 'no reason was given');
  });

  it('never repeats a key or token', () => {
    const raw = 'upstream said: key sk-ant-api03-AbC_123-xyz is not allowed; also sk-ant-oat01-QQQ';
    const line = describeTurnFailure(raw);
    assert.doesNotMatch(line, /AbC_123|QQQ/, line);
    assert.match(line, /sk-ant-\[redacted\] is not allowed/);
    assert.equal(redactSecrets('x sk-ant-test-REAL-KEY-never-in-sandbox y'), 'x sk-ant-[redacted] y');
  });

  it('recognizes the error type names of the API, not only Claude Code wording', () => {
    assert.match(describeTurnFailure('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'), /overloaded \(529\)/);
    assert.match(
      describeTurnFailure('{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'),
      /rate limiting requests \(429\)/,
    );
    assert.match(
      describeTurnFailure('{"type":"error","error":{"type":"authentication_error","message":"bad"}}'),
      /check ANTHROPIC_API_KEY/,
    );
  });
});

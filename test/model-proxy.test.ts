import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forwardHeaders, isApiPath } from '../src/proxy/model-proxy.js';

describe('model proxy', () => {
  it('forwards only /v1/ API paths, nothing that climbs out of them', () => {
    const table: Array<[string, boolean]> = [
      ['/v1/messages?beta=true', true],
      ['/v1/messages/count_tokens', true],
      ['/', false],
      ['/echo', false],
      ['//evil.example/v1/x', false],
      ['/v1/../echo', false],
      ['/v1/%2e%2e/echo', false],
      ['/v1/..%2fecho', false],
      ['/v1/./messages', false],
      ['/v1/%zz', false],
      ['/v1/a\\..\\b', false],
      ['http://evil.example/v1/messages', false],
    ];
    for (const [path, ok] of table) assert.equal(isApiPath(path), ok, path);
  });

  it("replaces the sandbox's credential with the real one, in the header of its kind", () => {
    const incoming = { 'x-api-key': 'placeholder', authorization: 'Bearer placeholder', 'anthropic-version': '2023-06-01', host: 'x' };
    assert.deepEqual(forwardHeaders(incoming, { kind: 'api-key', value: 'REAL' }), {
      'anthropic-version': '2023-06-01',
      'x-api-key': 'REAL',
    });
    assert.deepEqual(forwardHeaders(incoming, { kind: 'oauth', value: 'TOK' }), {
      'anthropic-version': '2023-06-01',
      authorization: 'Bearer TOK',
    });
  });
});

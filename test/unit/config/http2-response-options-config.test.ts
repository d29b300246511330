import { loadConfig } from '../../../src/config/config';

describe('KEYWARD_HTTP2_RESPONSE_OPTIONS', () => {
  it('is on by default and can be turned off', () => {
    expect(loadConfig({}).http2ResponseOptions).toBe(true);
    expect(loadConfig({ KEYWARD_HTTP2_RESPONSE_OPTIONS: 'false' }).http2ResponseOptions).toBe(false);
    expect(loadConfig({ KEYWARD_HTTP2_RESPONSE_OPTIONS: 'on' }).http2ResponseOptions).toBe(true);
  });

  it('rejects a value that is not a boolean, naming the variable', () => {
    expect(() => loadConfig({ KEYWARD_HTTP2_RESPONSE_OPTIONS: 'sometimes' })).toThrow(/KEYWARD_HTTP2_RESPONSE_OPTIONS.*true or false/);
  });
});

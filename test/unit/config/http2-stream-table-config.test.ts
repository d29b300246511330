import { loadConfig } from '../../../src/config/config';

describe('KEYWARD_HTTP2_STREAM_TABLE', () => {
  it('is on by default and can be turned off', () => {
    expect(loadConfig({}).http2StreamTable).toBe(true);
    expect(loadConfig({ KEYWARD_HTTP2_STREAM_TABLE: 'false' }).http2StreamTable).toBe(false);
    expect(loadConfig({ KEYWARD_HTTP2_STREAM_TABLE: 'on' }).http2StreamTable).toBe(true);
  });

  it('rejects a value that is not a boolean, naming the variable', () => {
    expect(() => loadConfig({ KEYWARD_HTTP2_STREAM_TABLE: 'maybe' })).toThrow(/KEYWARD_HTTP2_STREAM_TABLE.*true or false/);
  });
});

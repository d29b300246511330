/*
 * `keyward serve` must load the sidecar before commander and the admin CLI: the other order
 * costs the idle sidecar ~7 MiB of RSS (see the comment at the top of src/cli/main.ts).
 */
const order: string[] = [];

jest.mock('../../../src/cli/serve', () => {
  order.push('serve');
  return jest.requireActual('../../../src/cli/serve');
});
jest.mock('commander', () => {
  order.push('commander');
  return jest.requireActual('commander');
});
jest.mock('../../../src/cli/admin-client', () => {
  order.push('admin-client');
  return jest.requireActual('../../../src/cli/admin-client');
});
jest.mock('../../../src/cli/backup-commands', () => {
  order.push('backup-commands');
  return jest.requireActual('../../../src/cli/backup-commands');
});

describe('src/cli/main.ts module load order', () => {
  it('loads the sidecar (serve) before commander and the admin CLI modules', () => {
    jest.isolateModules(() => {
      require('../../../src/cli/main');
    });
    expect(order[0]).toBe('serve');
    expect(order).toEqual(expect.arrayContaining(['serve', 'commander', 'admin-client', 'backup-commands']));
  });
});

import { InvalidArgumentError } from '../../../src/domain/errors';
import { checkPolicyFields, type PolicyFields } from '../../../src/domain/policy-rules';
import { makePolicyFields } from '../helpers/records';

const DAY = 86_400_000;

const fields = (overrides: Partial<PolicyFields> = {}): PolicyFields => makePolicyFields({ name: 'rotating', maxAgeMs: 30 * DAY, ...overrides });

function fieldOf(f: PolicyFields): string {
  try {
    checkPolicyFields(f);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as InvalidArgumentError).field;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('policy.rotation rules', () => {
  it('keeps a valid notify rule and a valid auto rule', () => {
    expect(checkPolicyFields(fields({ rotation: { strategy: 'notify', noticeMs: 7 * DAY } })).rotation).toEqual({ strategy: 'notify', noticeMs: 7 * DAY });
    expect(checkPolicyFields(fields({ rotation: { strategy: 'auto', noticeMs: 0, gracePeriodMs: 1000 } })).rotation).toEqual({ strategy: 'auto', noticeMs: 0, gracePeriodMs: 1000 });
    expect(checkPolicyFields(fields({ rotation: { strategy: 'notify', noticeMs: 0, gracePeriodMs: 0 } })).rotation?.gracePeriodMs).toBe(0);
  });

  it('needs max_age, naming policy.rotation', () => {
    expect(fieldOf(fields({ maxAgeMs: undefined, rotation: { strategy: 'notify', noticeMs: 0 } }))).toBe('policy.rotation');
  });

  it('notice must be shorter than max_age', () => {
    expect(fieldOf(fields({ rotation: { strategy: 'notify', noticeMs: 30 * DAY } }))).toBe('policy.rotation.notice');
    expect(fieldOf(fields({ rotation: { strategy: 'notify', noticeMs: -1 } }))).toBe('policy.rotation.notice');
  });

  it('auto needs a grace period from 1s to 90d when set (zero would make the sealed secret unclaimable)', () => {
    expect(fieldOf(fields({ rotation: { strategy: 'auto', noticeMs: 0, gracePeriodMs: 0 } }))).toBe('policy.rotation.grace_period');
    expect(fieldOf(fields({ rotation: { strategy: 'auto', noticeMs: 0, gracePeriodMs: 999 } }))).toBe('policy.rotation.grace_period');
    expect(fieldOf(fields({ rotation: { strategy: 'auto', noticeMs: 0, gracePeriodMs: 91 * DAY } }))).toBe('policy.rotation.grace_period');
    expect(fieldOf(fields({ rotation: { strategy: 'notify', noticeMs: 0, gracePeriodMs: 91 * DAY } }))).toBe('policy.rotation.grace_period');
  });

  it('refuses an unknown strategy', () => {
    expect(fieldOf(fields({ rotation: { strategy: 'later' as 'auto', noticeMs: 0 } }))).toBe('policy.rotation.strategy');
  });
});

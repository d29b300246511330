import { InvalidArgumentError } from '../domain/errors';
import type { Policy, RefillPeriod, Weekday } from '../domain/policy';
import type { PolicyFields } from '../domain/policy-rules';
import type { Duration } from '../gen/google/protobuf/duration.pb';
import { RefillPeriod as ProtoRefill, RotationStrategy as ProtoStrategy, type Policy as ProtoPolicy, type RotationRule as ProtoRotation } from '../gen/keyward/v1/policy.pb';
import type { RotationRule } from '../domain/policy';

export function durationToMs(field: string, d: Duration | undefined): number | undefined {
  if (d === undefined) return undefined;
  const ms = d.seconds * 1000 + Math.floor(d.nanos / 1e6);
  if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(field, 'must be a non-negative duration');
  return ms;
}

export function msToDuration(ms: number | undefined): Duration | undefined {
  return ms === undefined ? undefined : { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** Request → domain fields (checked later by `checkPolicyFields`, which names the proto paths). */
export function policyFieldsFromProto(p: ProtoPolicy | undefined): PolicyFields {
  if (p === undefined) throw new InvalidArgumentError('policy', 'is required');
  let credits: PolicyFields['credits'];
  if (p.credits !== undefined) {
    const refill = p.credits.refill;
    let period: RefillPeriod | undefined;
    if (refill !== undefined) {
      if (refill.period === ProtoRefill.REFILL_PERIOD_DAILY) period = 'daily';
      else if (refill.period === ProtoRefill.REFILL_PERIOD_MONTHLY) period = 'monthly';
      else throw new InvalidArgumentError('policy.credits.refill.period', 'must be REFILL_PERIOD_DAILY or REFILL_PERIOD_MONTHLY');
    }
    credits = { initial: p.credits.initial, ...(refill && period && { refill: { period, amount: refill.amount } }) };
  }
  return {
    service: p.service,
    name: p.name,
    allowedScopes: p.allowedScopes,
    requireExpiry: p.requireExpiry,
    maxLifetimeMs: durationToMs('policy.max_lifetime', p.maxLifetime),
    maxAgeMs: durationToMs('policy.max_age', p.maxAge),
    allowedCidrs: p.allowedCidrs,
    timeZone: p.timeZone,
    timeWindows: p.timeWindows.map((w) => ({ days: w.days as Weekday[], start: w.start, end: w.end })),
    rateLimits: p.rateLimits.map((l, i) => ({
      name: l.name,
      limit: l.limit,
      periodMs: durationToMs(`policy.rate_limits[${i}].period`, l.period) ?? 0,
      burst: l.burst,
    })),
    credits,
    maxActiveKeys: p.maxActiveKeys,
    rotation: rotationFromProto(p.rotation),
  };
}

function rotationFromProto(r: ProtoRotation | undefined): RotationRule | undefined {
  if (r === undefined) return undefined;
  let strategy: RotationRule['strategy'];
  if (r.strategy === ProtoStrategy.ROTATION_STRATEGY_NOTIFY) strategy = 'notify';
  else if (r.strategy === ProtoStrategy.ROTATION_STRATEGY_AUTO) strategy = 'auto';
  else throw new InvalidArgumentError('policy.rotation.strategy', 'must be ROTATION_STRATEGY_NOTIFY or ROTATION_STRATEGY_AUTO');
  const gracePeriodMs = durationToMs('policy.rotation.grace_period', r.gracePeriod);
  return { strategy, noticeMs: durationToMs('policy.rotation.notice', r.notice) ?? 0, ...(gracePeriodMs !== undefined && { gracePeriodMs }) };
}

function rotationToProto(r: RotationRule | undefined): ProtoRotation | undefined {
  if (r === undefined) return undefined;
  return {
    strategy: r.strategy === 'notify' ? ProtoStrategy.ROTATION_STRATEGY_NOTIFY : ProtoStrategy.ROTATION_STRATEGY_AUTO,
    notice: msToDuration(r.noticeMs),
    gracePeriod: msToDuration(r.gracePeriodMs),
  };
}

export function toProtoPolicy(p: Policy, serviceDefault: boolean): ProtoPolicy {
  return {
    id: p.id,
    service: p.service,
    name: p.name,
    allowedScopes: [...p.allowedScopes],
    requireExpiry: p.requireExpiry,
    maxLifetime: msToDuration(p.maxLifetimeMs),
    maxAge: msToDuration(p.maxAgeMs),
    allowedCidrs: [...p.allowedCidrs],
    timeZone: p.timeZone,
    timeWindows: p.timeWindows.map((w) => ({ days: [...w.days], start: w.start, end: w.end })),
    rateLimits: p.rateLimits.map((l) => ({ name: l.name, limit: l.limit, period: msToDuration(l.periodMs), burst: l.burst })),
    credits:
      p.credits === undefined
        ? undefined
        : {
            initial: p.credits.initial,
            refill:
              p.credits.refill === undefined
                ? undefined
                : {
                    period: p.credits.refill.period === 'daily' ? ProtoRefill.REFILL_PERIOD_DAILY : ProtoRefill.REFILL_PERIOD_MONTHLY,
                    amount: p.credits.refill.amount,
                  },
          },
    maxActiveKeys: p.maxActiveKeys ?? 0,
    serviceDefault,
    rotation: rotationToProto(p.rotation),
    createTime: new Date(p.createdAt),
    updateTime: new Date(p.updatedAt),
  };
}

import { AlreadyExistsError, ConflictError, FailedPreconditionError, NotFoundError } from '../../domain/errors';
import type { Policy } from '../../domain/policy';
import type { PolicyPage, PolicyStore } from '../../ports/policy-store';
import { toStoreError, type RedisClient } from '../redis/redis-client';

/*
 * Policies in Redis, in the `{kw}` slot beside key records:
 *   {kw}:p:<id>        STRING  JSON of the policy (with a format version)
 *   {kw}:pi:<service>  ZSET    policy ids of a service (score 0, lexicographic = creation order)
 *   {kw}:pd:<service>  STRING  the service's default policy id
 * Multi-key writes are Lua scripts that check before they write.
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'EXISTS' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[3], ARGV[2]) end
return 'OK'`;

const REPLACE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 'NOT_FOUND' end
local ver = cjson.decode(cur).version
if tostring(ver) ~= ARGV[2] then return 'CONFLICT' end
redis.call('SET', KEYS[1], ARGV[1])
return 'OK'`;

const DELETE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if redis.call('GET', KEYS[3]) == ARGV[1] then return 'DEFAULT' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return cur`;

const SET_DEFAULT = `
if ARGV[1] == '' then redis.call('DEL', KEYS[2]) return 'OK' end
local cur = redis.call('GET', KEYS[1])
if not cur or cjson.decode(cur).service ~= ARGV[2] then return 'NOT_FOUND' end
redis.call('SET', KEYS[2], ARGV[1])
return 'OK'`;

const FORMAT_VERSION = 1;

export class RedisPolicyStore implements PolicyStore {
  private readonly p: string;

  constructor(private readonly opts: { redis: RedisClient; keyPrefix?: string }) {
    this.p = `{${opts.keyPrefix ?? 'kw'}}:`;
  }

  async createPolicy(policy: Policy, o: { serviceDefault: boolean }): Promise<void> {
    const reply = await this.run('createPolicy', () =>
      this.opts.redis.eval(CREATE, 3, this.key(policy.id), this.indexKey(policy.service), this.defaultKey(policy.service), encode(policy), policy.id, o.serviceDefault ? '1' : '0'),
    );
    if (reply === 'EXISTS') throw new AlreadyExistsError(`policy ${policy.id} already exists`);
  }

  async getPolicy(id: string): Promise<Policy | undefined> {
    const json = await this.run('getPolicy', () => this.opts.redis.get(this.key(id)));
    return json === null ? undefined : decode(json);
  }

  async listPolicies(q: { service: string; limit: number; after?: string }): Promise<PolicyPage> {
    const ids = await this.run('listPolicies', () =>
      this.opts.redis.zrangebylex(this.indexKey(q.service), q.after === undefined ? '-' : `(${q.after}`, '+', 'LIMIT', 0, q.limit + 1),
    );
    const page = ids.slice(0, q.limit);
    const jsons = page.length === 0 ? [] : await this.run('listPolicies', () => this.opts.redis.mget(...page.map((id) => this.key(id))));
    const policies = jsons.filter((j): j is string => j !== null).map(decode);
    return ids.length > q.limit ? { policies, nextAfter: page[page.length - 1] } : { policies };
  }

  async replacePolicy(policy: Policy, expectedVersion: number): Promise<void> {
    const reply = await this.run('replacePolicy', () => this.opts.redis.eval(REPLACE, 1, this.key(policy.id), encode(policy), String(expectedVersion)));
    if (reply === 'NOT_FOUND') throw new NotFoundError(`policy ${policy.id} not found`);
    if (reply === 'CONFLICT') throw new ConflictError(`policy ${policy.id} was changed concurrently`);
  }

  async deletePolicy(id: string): Promise<Policy | undefined> {
    const current = await this.getPolicy(id);
    if (!current) return undefined;
    const reply = await this.run('deletePolicy', () =>
      this.opts.redis.eval(DELETE, 3, this.key(id), this.indexKey(current.service), this.defaultKey(current.service), id),
    );
    if (reply === 'DEFAULT') {
      throw new FailedPreconditionError(`policy ${id} is the default of service ${current.service}; make another policy the default or clear it first`);
    }
    return reply === null ? undefined : decode(String(reply));
  }

  async getServiceDefault(service: string): Promise<string | undefined> {
    return (await this.run('getServiceDefault', () => this.opts.redis.get(this.defaultKey(service)))) ?? undefined;
  }

  async setServiceDefault(service: string, policyId: string | undefined): Promise<void> {
    const reply = await this.run('setServiceDefault', () =>
      this.opts.redis.eval(SET_DEFAULT, 2, this.key(policyId ?? ''), this.defaultKey(service), policyId ?? '', service),
    );
    if (reply === 'NOT_FOUND') throw new NotFoundError(`policy ${policyId} not found in service ${service}`);
  }

  private key(id: string): string {
    return `${this.p}p:${id}`;
  }
  private indexKey(service: string): string {
    return `${this.p}pi:${service}`;
  }
  private defaultKey(service: string): string {
    return `${this.p}pd:${service}`;
  }

  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(op, err);
    }
  }
}

function encode(p: Policy): string {
  return JSON.stringify({ ...p, v: FORMAT_VERSION });
}

function decode(json: string): Policy {
  const { v, ...policy } = JSON.parse(json) as Policy & { v: number };
  if (v !== FORMAT_VERSION) throw new Error(`policy ${policy.id} has unsupported format version ${v}`);
  return policy;
}

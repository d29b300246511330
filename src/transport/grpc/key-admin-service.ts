import type { Metadata, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { AdminAuthenticator } from '../../app/admin-authenticator';
import type { AuditQuery } from '../../app/audit-query';
import type { PolicyAdmin } from '../../app/policy-admin';
import { durationToMs, policyFieldsFromProto, toProtoPolicy } from '../../codec/policy-mapping';
import type { KeyRecord } from '../../domain/key-record';
import type { KeyAdmin } from '../../app/key-admin';
import type { Principal } from '../../domain/admin-access';
import type { KeyAdminServiceServer } from '../../gen/keyward/v1/key_admin_service.pb';
import type { Logger } from '../../logger';
import { fromDate, stateFromProto, toApiKey } from '../../codec/proto-mapping';
import { isInternal, toServiceError } from './status';

export interface KeyAdminServiceOptions {
  admin: KeyAdmin;
  policies: PolicyAdmin;
  audit: AuditQuery;
  authenticator: AdminAuthenticator;
  logger: Logger;
}

function authorization(metadata: Metadata): string | undefined {
  const v = metadata.get('authorization')[0];
  return typeof v === 'string' ? v : undefined;
}

/** `keyward.v1.KeyAdminService`: authenticates every call, then runs the matching use case. */
export function createKeyAdminService({ admin, policies, audit, authenticator, logger }: KeyAdminServiceOptions): KeyAdminServiceServer {
  /** The key as GetKey and friends show it, with its remaining credits when it has any. */
  const view = async (record: KeyRecord) => ({ ...toApiKey(record), creditsRemaining: await admin.creditsOf(record) });

  function handle<Req, Res>(run: (p: Principal, req: Req) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      authenticator
        .authenticate(authorization(call.metadata))
        .then((principal) => run(principal, call.request))
        .then(
          (res) => callback(null, res),
          (err) => {
            if (isInternal(err)) logger.error({ err, method: call.getPath() }, 'admin call failed');
            callback(toServiceError(err), null);
          },
        );
    };
  }

  return {
    createKey: handle(async (p, req) => {
      const { record, secret } = await admin.create(p, {
        service: req.service,
        owner: req.owner,
        name: req.name,
        scopes: req.scopes,
        metadata: req.metadata,
        prefix: req.prefix,
        notBefore: fromDate('not_before_time', req.notBeforeTime),
        expiresAt: fromDate('expire_time', req.expireTime),
        policyId: req.policyId,
        credits: req.credits,
      });
      return { key: await view(record), secret };
    }),
    getKey: handle(async (p, req) => ({ key: await view(await admin.get(p, req.keyId)) })),
    listKeys: handle(async (p, req) => {
      const page = await admin.list(p, {
        service: req.service,
        owner: req.owner,
        state: stateFromProto('state', req.state),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { keys: page.records.map(toApiKey), nextPageToken: page.nextPageToken };
    }),
    updateKey: handle(async (p, req) => {
      const record = await admin.update(p, {
        keyId: req.keyId,
        updateMask: req.updateMask ?? [],
        name: req.name,
        scopes: req.scopes,
        metadata: req.metadata,
        expiresAt: fromDate('expire_time', req.expireTime),
        enabled: req.enabled,
        policyId: req.policyId,
        credits: req.credits,
      });
      return { key: await view(record) };
    }),
    revokeKey: handle(async (p, req) => ({ key: toApiKey(await admin.revoke(p, req.keyId, req.reason)) })),
    rotateKey: handle(async (p, req) => {
      const { retired, successor, secret } = await admin.rotate(p, req.keyId, durationToMs('grace_period', req.gracePeriod));
      return { key: toApiKey(retired), successor: await view(successor), secret };
    }),
    claimRotatedSecret: handle(async (p, req) => {
      const { record, secret } = await admin.claimRotatedSecret(p, req.keyId);
      return { key: await view(record), secret };
    }),
    deleteKey: handle(async (p, req) => {
      await admin.delete(p, req.keyId);
      return {};
    }),
    createPolicy: handle(async (p, req) => {
      const v = await policies.create(p, policyFieldsFromProto(req.policy), req.serviceDefault);
      return { policy: toProtoPolicy(v.policy, v.serviceDefault) };
    }),
    getPolicy: handle(async (p, req) => {
      const v = await policies.get(p, req.policyId);
      return { policy: toProtoPolicy(v.policy, v.serviceDefault) };
    }),
    listPolicies: handle(async (p, req) => {
      const page = await policies.list(p, req.service, req.pageSize, req.pageToken);
      return { policies: page.views.map((v) => toProtoPolicy(v.policy, v.serviceDefault)), nextPageToken: page.nextPageToken };
    }),
    updatePolicy: handle(async (p, req) => {
      // the service comes from the stored policy; a missing `policy` is INVALID_ARGUMENT from the mapping
      const fields = policyFieldsFromProto(req.policy && { ...req.policy, service: 'unused' });
      const v = await policies.update(p, req.policy?.id ?? '', fields, req.updateMask ?? [], req.serviceDefault);
      return { policy: toProtoPolicy(v.policy, v.serviceDefault) };
    }),
    deletePolicy: handle(async (p, req) => {
      await policies.delete(p, req.policyId);
      return {};
    }),
    listAuditEvents: handle(async (p, req) => {
      const { page, nextPageToken } = await audit.list(p, {
        service: req.service,
        keyId: req.keyId,
        types: req.types,
        from: fromDate('start_time', req.startTime),
        to: fromDate('end_time', req.endTime),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return {
        events: page.entries.map((e) => ({
          id: e.id,
          time: new Date(e.time),
          service: e.service,
          keyId: e.keyId,
          type: e.type,
          actor: e.actor,
          detail: { ...e.detail },
        })),
        nextPageToken,
      };
    }),
  };
}

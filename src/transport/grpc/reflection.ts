import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

/**
 * Server reflection (v1 and v1alpha), so `grpcurl list` and `buf curl` work with no proto files
 * at hand. keyward's descriptors come from `buf build` (src/gen/keyward.binpb, made by
 * `npm run generate`) rather than from protobufjs, which merges each package into one synthetic
 * file without imports, and reflection clients then fail to resolve services.
 */
export function createReflectionService(): ReflectionService {
  const files = ['keyward.binpb', 'health.binpb'].flatMap((name) =>
    fromBinary(FileDescriptorSetSchema, readFileSync(join(__dirname, '../../gen', name))).file.map((f) =>
      Buffer.from(toBinary(FileDescriptorProtoSchema, f)),
    ),
  );
  // ReflectionService reads only `fileDescriptorProtos` from the definitions it is given.
  return new ReflectionService({ descriptors: { fileDescriptorProtos: files } } as unknown as PackageDefinition);
}

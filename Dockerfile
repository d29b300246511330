# syntax=docker/dockerfile:1
# keyward image: multi-stage, production dependencies only, non-root, `keyward serve` by default.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# The image's `node` user (uid 1000); no shell tools are needed at run time.
USER 1000:1000
# 50051: gRPC API (KEYWARD_GRPC_ADDR, localhost by default: the app shares the pod's network)
# 9091: health-only gRPC for probes (KEYWARD_HEALTH_ADDR); 9464: Prometheus metrics
EXPOSE 50051 9091 9464
ENTRYPOINT ["node", "/app/bin/keyward.js"]
CMD ["serve"]

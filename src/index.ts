/** keyward's public library surface: the generated clients and messages, and the sidecar itself. */
export * from './gen/keyward/v1/api_key.pb';
export * from './gen/keyward/v1/key_service.pb';
export * from './gen/keyward/v1/key_admin_service.pb';
export { startSidecar, type Sidecar, type SidecarDeps } from './sidecar';
export { loadConfig, ConfigError, type Config } from './config/config';
export { parseKey, generateKey, displayHint } from './domain/key-format';

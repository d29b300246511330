import { resolve } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A real worker thread running a TypeScript module of src/ (jest compiles the test's own imports,
 * not a worker's): a small bootstrap registers a `.ts` loader that transpiles with the project's
 * TypeScript, then requires the module.
 */
export function startTsWorker(file: string, options: WorkerOptions = {}): Worker {
  const bootstrap = `
    const ts = require('typescript');
    const { readFileSync } = require('node:fs');
    require.extensions['.ts'] = (module, filename) => {
      const out = ts.transpileModule(readFileSync(filename, 'utf8'), {
        fileName: filename,
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      });
      module._compile(out.outputText, filename);
    };
    require(${JSON.stringify(resolve(file))});
  `;
  return new Worker(bootstrap, { ...options, eval: true });
}

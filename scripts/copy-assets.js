// Copies the descriptor sets that server reflection serves (made by `npm run generate`) into dist/.
const { copyFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const root = join(__dirname, '..');
mkdirSync(join(root, 'dist/gen'), { recursive: true });
for (const f of ['keyward.binpb', 'health.binpb']) copyFileSync(join(root, 'src/gen', f), join(root, 'dist/gen', f));

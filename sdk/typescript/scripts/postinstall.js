// Installed as a folder (npm install <path>), npm links this directory
// into the project and installs none of its dependencies: Node resolves
// them from here, where a fresh clone has none. This installs them here
// then, and does nothing when they resolve already (a tarball install,
// or npm ci in this directory).
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const dir = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(dir, 'package.json'))
try {
  require.resolve('@connectrpc/connect-node')
  require.resolve('@bufbuild/protobuf')
} catch {
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: dir, stdio: 'inherit' })
}

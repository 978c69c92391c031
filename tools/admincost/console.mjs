// Opens the admin console in headless Chromium, signs in and stays on a
// page until killed: the "one open console" of tools/admincost/run.
//   node console.mjs <console URL> <password> [overview|streams:<stream>]
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(here, '..', '..', 'e2e', 'js', 'package.json'))
const puppeteer = require('puppeteer-core')

const [url, password, view = 'overview'] = process.argv.slice(2)
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new']
})
const page = await browser.newPage()
await page.setViewport({ width: 1280, height: 800 })
await page.goto(url, { waitUntil: 'load' })
await page.waitForSelector('#signin-password', { visible: true, timeout: 20000 })
await page.type('#signin-password', password)
await page.keyboard.press('Enter')
await page.waitForSelector('#chart-connections', { visible: true, timeout: 20000 })
if (view.startsWith('streams:')) {
  await page.goto(`${url}#streams/${encodeURIComponent(view.slice(8))}`)
  await page.waitForSelector('#stream-watch', { visible: true, timeout: 20000 })
  await page.click('#stream-watch')
}
console.log('console open:', view)
process.on('SIGTERM', async () => { await browser.close(); process.exit(0) })
setInterval(() => {}, 1 << 30)

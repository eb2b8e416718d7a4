// jest's globalSetup: start tests/miniprogram/service.py (a real `haochaping serve` and the WeChat double) with the
// project's Python (HCP_PYTHON, set by tests/test_miniprogram.py; the checkout's .venv otherwise) and hand its
// addresses to the tests through the environment.
const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')

module.exports = async function () {
  const root = path.resolve(__dirname, '..', '..')
  const python = process.env.HCP_PYTHON || path.join(root, '.venv', 'bin', 'python')
  const child = spawn(python, [path.join(__dirname, 'service.py')], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
  globalThis.__HCP_SERVICE__ = child
  const line = await new Promise(function (resolve, reject) {
    const lines = readline.createInterface({ input: child.stdout })
    lines.once('line', resolve)
    child.once('exit', function (code) { reject(new Error('service.py stopped with ' + code)) })
  })
  const info = JSON.parse(line)
  process.env.HCP_BASE_URL = info.base_url
  process.env.HCP_CONTROL_URL = info.control_url
  process.env.HCP_API_TOKEN = info.api_token
  process.env.HCP_TEMPLATE_ID = info.template_id
}

// Closing the service's stdin stops it, the WeChat double and its database with it.
module.exports = async function () {
  const child = globalThis.__HCP_SERVICE__
  if (!child) return
  await new Promise(function (resolve) {
    child.once('exit', resolve)
    child.stdin.end()
    setTimeout(function () { child.kill('SIGKILL') }, 15000).unref()
  })
}

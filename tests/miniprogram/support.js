// Loading the mini-program's pages and component into miniprogram-simulate, and waiting on what they fetch.
const path = require('path')
const simulate = require('miniprogram-simulate')

const ROOT = path.resolve(__dirname, '..', '..', 'miniprogram')

// jest keeps its own module registry, so a file loaded twice would not define its component again: start afresh
// (miniprogram-simulate's runJs deletes require.cache, which jest ignores). One rootPath for every load, so that
// "/components/…" in a page's usingComponents resolves inside the mini-program.
function load(relative) {
  jest.resetModules()
  return simulate.load(path.join(ROOT, relative), { rootPath: ROOT })
}

// A page (written with Component(), as WeChat allows) rendered and attached, then opened with its query.
async function openPage(relative, query) {
  const page = simulate.render(load(relative))
  page.attach(document.createElement('parent-wrapper'))
  await page.instance.onLoad(query || {})
  await simulate.sleep(0)
  return page
}

function render(relative, props) {
  const comp = simulate.render(load(relative), props)
  comp.attach(document.createElement('parent-wrapper'))
  return comp
}

// Real HTTP to a real service takes its time: poll the rendered data instead of guessing a delay.
async function until(check, what) {
  const started = Date.now()
  for (;;) {
    const value = check()
    if (value) return value
    if (Date.now() - started > 10000) throw new Error('gave up waiting for ' + (what || check.toString()))
    await simulate.sleep(20)
  }
}

function text(comp, selector) {
  const found = comp.querySelector(selector)
  return found ? found.dom.textContent.trim() : null
}

async function tap(comp, selector) {
  const found = comp.querySelector(selector)
  if (!found) throw new Error('nothing to tap at ' + selector)
  found.dispatchEvent('tap')
  await simulate.sleep(0)
}

async function type(comp, selector, value) {
  comp.querySelector(selector).dispatchEvent('input', { detail: { value: value } })
  await simulate.sleep(0)
}

module.exports = { ROOT: ROOT, simulate: simulate, load: load, openPage: openPage, render: render, until: until,
  text: text, tap: tap, type: type }

// What WeChat's client gives a mini-program, for the tests: `wx.request` over Node's http to the real service
// (WeChat's semantics: `success` for every HTTP status, `fail` only when nothing came back; object data as a JSON
// body, or as the query string of a GET), storage, wx.login (a code the WeChat double is told to exchange), and
// wx.requestSubscribeMessage answering as the person chooses (the test sets `answer`). Nothing of the service is
// stood in for: only the phone.
const http = require('http')

const state = { answer: 'accept', asked: [], offline: false, language: 'zh_CN', title: null }

function request(options) {
  const method = (options.method || 'GET').toUpperCase()
  const headers = Object.assign({}, options.header || {})
  let url = options.url
  let body
  if (options.data !== undefined && options.data !== null) {
    if (method === 'GET') {
      const query = new URLSearchParams(options.data).toString()
      if (query) url += (url.indexOf('?') >= 0 ? '&' : '?') + query
    } else {
      body = typeof options.data === 'string' ? options.data : JSON.stringify(options.data)
    }
  }
  const done = function (result, ok) {
    setTimeout(function () {
      if (ok && options.success) options.success(result)
      if (!ok && options.fail) options.fail(result)
      if (options.complete) options.complete(result)
    }, 0)
  }
  if (state.offline) {
    done({ errMsg: 'request:fail net::ERR_INTERNET_DISCONNECTED' }, false)
    return
  }
  const target = new URL(url)
  const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname + target.search,
    method: method, headers: headers }, function (res) {
    const chunks = []
    res.on('data', function (c) { chunks.push(c) })
    res.on('end', function () {
      const text = Buffer.concat(chunks).toString('utf8')
      let data = text
      try { data = JSON.parse(text) } catch (e) { /* not JSON: WeChat hands the text over */ }
      done({ statusCode: res.statusCode, data: data, header: res.headers, errMsg: 'request:ok' }, true)
    })
  })
  req.on('error', function (e) { done({ errMsg: 'request:fail ' + e.message }, false) })
  if (body !== undefined) req.write(body)
  req.end()
}

const storage = {}

function install() {
  Object.assign(global.wx, {
    request: request,
    requestSubscribeMessage: function (options) {
      state.asked.push(options.tmplIds)
      const result = { errMsg: 'requestSubscribeMessage:ok' }
      options.tmplIds.forEach(function (id) { result[id] = state.answer })
      setTimeout(function () { if (options.success) options.success(result) }, 0)
    },
    login: function (options) {
      // the code the service will exchange: registered with the WeChat double first (control.login)
      setTimeout(function () { options.success({ code: state.code, errMsg: 'login:ok' }) }, 0)
    },
    getStorageSync: function (key) { return storage[key] === undefined ? '' : storage[key] },
    setStorageSync: function (key, value) { storage[key] = value },
    removeStorageSync: function (key) { delete storage[key] },
    getSystemInfoSync: function () { return { language: state.language } },
    setNavigationBarTitle: function (options) { state.title = options.title }
  })
  global.getApp = function () { return { globalData: { baseUrl: process.env.HCP_BASE_URL } } }
}

function reset() {
  state.answer = 'accept'
  state.asked = []
  state.offline = false
  state.language = 'zh_CN'
  state.title = null
  Object.keys(storage).forEach(function (k) { delete storage[k] })
}

module.exports = { state: state, install: install, reset: reset, request: request }

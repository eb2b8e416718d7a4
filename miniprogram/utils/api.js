// The service's mini-program API (/api/mp/v1/…) through wx.request, as promises that never reject: an answer is
// {status, data}; a request that never reached the service (no network, a domain not allowed) is {offline: true}.
// WeChat calls `success` for every HTTP status, so 4xx answers arrive here as answers, not failures.

function call(baseUrl, method, path, data, session) {
  const header = { 'content-type': 'application/json' }
  if (session) header.Authorization = 'Bearer ' + session
  return new Promise(function (resolve) {
    wx.request({
      url: String(baseUrl || '').replace(/\/+$/, '') + path,
      method: method,
      data: data,
      header: header,
      timeout: 15000,
      success: function (res) {
        resolve({ status: res.statusCode, data: res.data })
      },
      fail: function (err) {
        resolve({ offline: true, error: (err && err.errMsg) || 'request:fail' })
      }
    })
  })
}

module.exports = {
  get: function (baseUrl, path, data, session) { return call(baseUrl, 'GET', path, data, session) },
  post: function (baseUrl, path, data, session) { return call(baseUrl, 'POST', path, data, session) }
}

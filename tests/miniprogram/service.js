// The tests' side of the service: the business API (cases in, evaluations out) and the control server of
// tests/miniprogram/service.py (the WeChat double's logins, its subscribe messages, `haochaping tick`).
const http = require('http')

function call(base, method, path, body, headers) {
  return new Promise(function (resolve, reject) {
    const target = new URL(base + path)
    const req = http.request({ hostname: target.hostname, port: target.port, path: target.pathname + target.search,
      method: method, headers: Object.assign({ 'content-type': 'application/json' }, headers || {}) }, function (res) {
      const chunks = []
      res.on('data', function (c) { chunks.push(c) })
      res.on('end', function () {
        const text = Buffer.concat(chunks).toString('utf8')
        let data = text
        try { data = JSON.parse(text) } catch (e) { /* keep the text */ }
        resolve({ status: res.statusCode, data: data })
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(JSON.stringify(body))
    req.end()
  })
}

function api(method, path, body) {
  return call(process.env.HCP_BASE_URL, method, path, body, { Authorization: 'Bearer ' + process.env.HCP_API_TOKEN })
}

function control(method, path, body) {
  return call(process.env.HCP_CONTROL_URL, method, path, body)
}

let serial = 0

// A case completed an hour ago for a person of the mini-program (and a phone, for the SMS fallback).
async function newCase(extra) {
  serial += 1
  const stamp = Date.now().toString(36) + serial
  const completed = new Date(Date.now() - 3600 * 1000).toISOString()
  const openid = 'oMP' + stamp.padStart(25, '0')
  const body = Object.assign({
    case_no: 'MP-' + stamp, item_code: '440500-000-XK-0001', item_name: '居民身份证换领',
    agency_code: '11440500MB2C01234X', agency_name: '汕头市公安局金平分局', completed_at: completed,
    staff_id: 'G1024', staff_name: '李四', kind: 'instant',
    applicant: { name: '赵六', locale: 'zh-CN', mp_openid: openid, phone: '139' + String(10000000 + serial * 7919).slice(-8) }
  }, extra || {})
  const res = await api('POST', '/api/v1/cases', body)
  if (res.status !== 201) throw new Error('case not created: ' + JSON.stringify(res.data))
  return { caseNo: body.case_no, openid: openid, remindAt: res.data.remind_at }
}

// The reminder as WeChat delivers it: `haochaping tick` at the reminder's time sends the subscribe message,
// whose `page` is what the phone opens (pages/rate/index?token=…).
async function reminderPage(c) {
  const ticked = await control('POST', '/tick', { now: new Date(Date.parse(c.remindAt) + 60000).toISOString() })
  if (ticked.data.status !== 0) throw new Error('tick failed: ' + ticked.data.err)
  const sent = (await control('GET', '/sent')).data.filter(function (m) { return m.touser === c.openid })
  if (!sent.length) throw new Error('no subscribe message reached ' + c.openid)
  const page = sent[sent.length - 1].page
  const query = {}
  new URLSearchParams(page.split('?')[1]).forEach(function (v, k) { query[k] = v })
  return { path: page.split('?')[0], query: query }
}

async function evaluations(caseNo) {
  const res = await api('GET', '/api/v1/cases/' + encodeURIComponent(caseNo))
  return res.data.evaluations
}

module.exports = { api: api, control: control, newCase: newCase, reminderPage: reminderPage, evaluations: evaluations }

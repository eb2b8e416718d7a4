// The mini-program against a real `haochaping serve` (tests/miniprogram/service.py): the page a subscribe message
// opens, the list of cases after wx.login, good and bad ratings, the subscription asked inside the tap and its
// answer told to the service, every refusal in the web rating page's words, 长辈模式 and the three languages.
const wx = require('./wx.js')
const service = require('./service.js')
const { openPage, render, until, text, tap, type } = require('./support.js')

const zh = require('../../miniprogram/i18n/zh_Hans.js')
const hant = require('../../miniprogram/i18n/zh_Hant.js')
const en = require('../../miniprogram/i18n/en.js')

beforeEach(function () {
  wx.reset()
  wx.install()
})

function rating(page) {
  return page.querySelector('#rating')
}

async function shown(comp, screen) {
  await until(function () { return comp.data.screen === screen }, 'the ' + screen + ' screen (at ' + comp.data.screen + ')')
  return comp
}

test('the subscribe message opens the rating page; a good grade is sent at once after the subscription is asked',
  async function () {
    const c = await service.newCase()
    const opened = await service.reminderPage(c)
    expect(opened.path).toBe('pages/rate/index')

    const page = await openPage('pages/rate/index', opened.query)
    const comp = await shown(rating(page), 'grade')
    expect(wx.state.title).toBe(zh['page.title'])
    expect(text(comp, '#case')).toContain('居民身份证换领')
    expect(text(comp, '#case')).toContain('汕头市公安局金平分局')
    expect(text(comp, '#grade-very_satisfied')).toBe(zh['grade.very_satisfied'])

    await tap(comp, '#grade-very_satisfied')
    await shown(comp, 'done')

    expect(wx.state.asked).toEqual([[process.env.HCP_TEMPLATE_ID]]) // inside the tap, once
    expect(text(comp, '#thanks')).toBe(zh['page.thanks'])
    expect(text(comp, '#next')).toBe(zh['page.thanks_more'])
    const stored = await service.evaluations(c.caseNo)
    expect(stored.map(function (e) { return [e.grade, e.channel] })).toEqual([['very_satisfied', 'miniprogram']])
  })

test('after wx.login the waiting cases are listed; a bad grade needs a reason, 其他 needs words, then a work order',
  async function () {
    const c = await service.newCase()
    wx.state.code = 'code-' + c.openid.slice(-10)
    await service.control('POST', '/login', { code: wx.state.code, openid: c.openid })

    const page = await openPage('pages/cases/index', {})
    await until(function () { return page.data.screen === 'list' }, 'the list of cases')
    expect(page.data.cases.map(function (x) { return x.case_no })).toEqual([c.caseNo])
    expect(wx.state.title).toBe(zh['mp.cases_title'])
    expect(JSON.stringify(page.data)).not.toContain(c.openid) // the service's session, never the openid
    expect(text(page, '#case-0')).toContain('居民身份证换领')

    await tap(page, '#case-0')
    const comp = await shown(rating(page), 'grade')
    await tap(comp, '#grade-dissatisfied')
    await shown(comp, 'reasons')
    const labels = comp.data.reasons.map(function (r) { return r.label })
    expect(labels[0]).toBe('服务态度差') // the policy's reasons, from the service
    expect(labels[labels.length - 1]).toBe('其他')

    await tap(comp, '#submit')
    expect(text(comp, '#error')).toBe(zh['page.need_reason'])
    await tap(comp, '#reason-other')
    expect(comp.data.needText).toBe(true)
    await tap(comp, '#submit')
    expect(text(comp, '#error')).toBe(zh['page.need_text'])
    await type(comp, '#text', '窗口长时间无人')
    await tap(comp, '#submit')
    await shown(comp, 'done')

    expect(text(comp, '#next')).toBe(zh['mp.next_work_order'])
    const stored = await service.evaluations(c.caseNo)
    expect(stored.map(function (e) { return [e.grade, e.reasons, e.text] }))
      .toEqual([['dissatisfied', ['other'], '窗口长时间无人']])
    const orders = (await service.api('GET', '/api/v1/cases/' + encodeURIComponent(c.caseNo))).data.work_orders
    expect(orders.length).toBe(1) // the bad review became a work order, as the result page said
  })

test('a refused subscription is told to the service: the next reminder goes by SMS, not as a subscribe message',
  async function () {
    const first = await service.newCase()
    const opened = await service.reminderPage(first)
    wx.state.answer = 'reject'
    const comp = await shown(rating(await openPage('pages/rate/index', opened.query)), 'grade')
    await tap(comp, '#grade-satisfied')
    await shown(comp, 'done')
    expect(wx.state.asked.length).toBe(1)

    const second = await service.newCase({
      case_no: first.caseNo + '-2',
      applicant: { name: '赵六', locale: 'zh-CN', mp_openid: first.openid, phone: '13987654321' }
    })
    const ticked = await service.control('POST', '/tick',
      { now: new Date(Date.parse(second.remindAt) + 60000).toISOString() })
    expect(ticked.data.status).toBe(0)
    const sent = (await service.control('GET', '/sent')).data.filter(function (m) { return m.touser === first.openid })
    expect(sent.length).toBe(1) // the first reminder only
    const reminders = (await service.api('GET', '/api/v1/cases/' + encodeURIComponent(second.caseNo))).data.reminders
    expect(reminders.map(function (r) { return r.channel })).toEqual(['sms'])
  })

test('each refusal says what the web rating page says: an invalid link, rated already, too late, barred, no network',
  async function () {
    const c = await service.newCase()
    const opened = await service.reminderPage(c)

    const forged = await shown(render('components/hcp-rating/index',
      { baseUrl: process.env.HCP_BASE_URL, token: opened.query.token.slice(0, -2) + 'xx' }), 'problem')
    expect(text(forged, '#problem-heading')).toBe(zh['page.invalid_heading'])
    expect(text(forged, '#problem-message')).toBe(zh['page.invalid'])
    expect(forged.querySelector('#retry')).toBeFalsy()

    await service.api('POST', '/api/v1/evaluations', { case_no: c.caseNo, grade: 'satisfied', channel: 'web' })
    await service.api('POST', '/api/v1/evaluations', { case_no: c.caseNo, grade: 'satisfied', channel: 'web' })
    const used = await shown(render('components/hcp-rating/index',
      { baseUrl: process.env.HCP_BASE_URL, token: opened.query.token }), 'problem')
    expect(used.data.problem.kind).toBe('used')
    expect(text(used, '#problem-heading')).toBe(zh['page.used_heading'])
    expect(text(used, '#problem-message')).toBe(zh['page.used'])

    const completed = Date.now() - 60 * 86400 * 1000
    const old = await service.newCase({ completed_at: new Date(completed).toISOString() })
    const late = await service.reminderPage(old) // sent when it was due, opened two months later, long after
    await service.control('POST', '/tick', { now: new Date(completed + 20 * 86400 * 1000).toISOString() }) // 默认好评
    const expired = await shown(render('components/hcp-rating/index',
      { baseUrl: process.env.HCP_BASE_URL, token: late.query.token }), 'problem')
    expect(expired.data.problem.kind).toBe('expired')
    expect(text(expired, '#problem-heading')).toBe(zh['page.expired_heading'])

    const barredCase = await service.newCase()
    const barredPage = await service.reminderPage(barredCase)
    expect((await service.control('POST', '/bar', { openid: barredCase.openid })).data.barred).toBe(true)
    const barred = await shown(render('components/hcp-rating/index',
      { baseUrl: process.env.HCP_BASE_URL, token: barredPage.query.token }), 'problem')
    expect(barred.data.problem.kind).toBe('barred')
    expect(text(barred, '#problem-heading')).toBe(zh['page.barred_heading'])

    wx.state.offline = true
    const other = await service.newCase()
    const otherPage = await service.reminderPage(other)
    const offline = await shown(render('components/hcp-rating/index',
      { baseUrl: process.env.HCP_BASE_URL, token: otherPage.query.token }), 'problem')
    expect(text(offline, '#problem-heading')).toBe(zh['mp.offline_heading'])
    wx.state.offline = false
    await tap(offline, '#retry')
    await shown(offline, 'grade')
  })

test('a choice made offline stays on the screen and is sent once the network is back', async function () {
  const c = await service.newCase()
  const opened = await service.reminderPage(c)
  const comp = await shown(render('components/hcp-rating/index',
    { baseUrl: process.env.HCP_BASE_URL, token: opened.query.token }), 'grade')
  await tap(comp, '#grade-very_dissatisfied')
  await tap(comp, '#reason-attitude')
  wx.state.offline = true
  await tap(comp, '#submit')
  await until(function () { return comp.data.error }, 'the offline message')
  expect(text(comp, '#error')).toBe(zh['mp.offline'])
  expect(comp.data.screen).toBe('reasons')
  wx.state.offline = false
  await tap(comp, '#submit')
  await shown(comp, 'done')
  const stored = await service.evaluations(c.caseNo)
  expect(stored.map(function (e) { return [e.grade, e.reasons] })).toEqual([['very_dissatisfied', ['attitude']]])
})

test('长辈模式 and the three languages: the words are the catalogs\' and the reasons the service\'s', async function () {
  const c = await service.newCase()
  const opened = await service.reminderPage(c)
  wx.state.language = 'en'
  const english = await shown(render('components/hcp-rating/index',
    { baseUrl: process.env.HCP_BASE_URL, token: opened.query.token }), 'grade')
  expect(text(english, '#grade-very_satisfied')).toBe(en['grade.very_satisfied'])
  expect(english.data.reasons[0].label).not.toBe('服务态度差')
  expect(text(english, '#elder')).toBe(en['page.elder_on'])

  const traditional = await shown(render('components/hcp-rating/index',
    { baseUrl: process.env.HCP_BASE_URL, token: opened.query.token, locale: 'zh_Hant', elder: true }), 'grade')
  expect(text(traditional, '#grade-dissatisfied')).toBe(hant['grade.dissatisfied'])
  expect(traditional.dom.innerHTML).toContain('elder')
  await tap(traditional, '#elder')
  expect(traditional.data.elderMode).toBe(false)
  expect(text(traditional, '#elder')).toBe(hant['page.elder_on'])
})

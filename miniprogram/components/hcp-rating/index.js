// <hcp-rating>: rates one case with the service, in the web rating page's words and rules.
//
// Properties: base-url (the service's origin), token (a rating link's token: what the subscribe message's page
// carries) or item (a case from GET /api/mp/v1/cases, which carries its token), session (the service's session
// after wx.login, optional with a token), locale (zh_Hans, zh_Hant, en; the phone's language by default), elder
// (长辈模式: large type, one question a screen). Events: "rated" {grade, next}.
//
// The first tap on a grade asks wx.requestSubscribeMessage for the service's template (WeChat allows it only
// inside a tap) and tells the service the answer, so that the next reminder goes as a subscribe message, or by
// SMS at once when the person refused. A good grade is sent at once; a bad one asks for the policy's reasons
// (fetched from the service, never copied here), and for words when 其他 is chosen.
const api = require('../../utils/api.js')
const i18n = require('../../i18n/index.js')

const GRADES = ['very_satisfied', 'satisfied', 'basically_satisfied', 'dissatisfied', 'very_dissatisfied']
const BAD = { dissatisfied: true, very_dissatisfied: true }
const OTHER = 'other'
const ANSWERS = { accept: true, reject: true, ban: true } // what is worth telling the service

// The catalog's keys ("page.title") as names WXML can bind ("page_title").
function words(locale) {
  const table = i18n.strings(locale)
  const out = {}
  Object.keys(table).forEach(function (key) { out[key.replace(/\./g, '_')] = table[key] })
  return out
}

Component({
  properties: {
    baseUrl: { type: String, value: '' },
    token: { type: String, value: '' },
    item: { type: Object, value: null },
    session: { type: String, value: '' },
    locale: { type: String, value: '' },
    elder: { type: Boolean, value: false }
  },

  data: {
    screen: 'loading',
    w: words('zh_Hans'),
    info: null,
    followup: '',
    grades: [],
    reasons: [],
    grade: '',
    text: '',
    needText: false,
    error: '',
    problem: null,
    next: '',
    submitting: false,
    elderMode: false
  },

  observers: {
    'token, item': function () {
      if (this._attached) this.load()
    }
  },

  lifetimes: {
    attached: function () {
      this._attached = true
      this._asked = false
      this.setData({ elderMode: this.data.elder })
      this.load()
    },
    detached: function () {
      this._attached = false
    }
  },

  methods: {
    locale: function () {
      return this.data.locale ? i18n.localeOf(this.data.locale) : i18n.systemLocale()
    },

    tokenOf: function () {
      return this.data.token || (this.data.item && this.data.item.token) || ''
    },

    load: function () {
      const self = this
      const locale = this.locale()
      const w = words(locale)
      const token = this.tokenOf()
      this.setData({ w: w, screen: 'loading', error: '', grade: '', text: '', needText: false, next: '' })
      if (!token) {
        this.setData({ screen: 'problem', problem: { kind: 'invalid', heading: w.page_invalid_heading,
          message: w.page_invalid, retry: false } })
        return Promise.resolve()
      }
      return api.get(this.data.baseUrl, '/api/mp/v1/rating', { token: token, locale: locale }).then(function (res) {
        if (res.offline) {
          self.setData({ screen: 'problem', problem: { kind: 'offline', heading: w.mp_offline_heading,
            message: w.mp_offline, retry: true } })
          return
        }
        if (res.status !== 200) {
          self.showProblem(res)
          return
        }
        const doc = res.data
        self._subscribe = doc.subscribe
        self.setData({
          screen: 'grade',
          info: doc.case,
          followup: doc.state === 'followup' ? w.mp_followup : '',
          grades: GRADES.map(function (code) {
            return { code: code, label: w['grade_' + code], bad: !!BAD[code] }
          }),
          reasons: doc.reasons.map(function (r) { return { code: r.code, label: r.label, checked: false } })
        })
      })
    },

    showProblem: function (res) {
      const w = this.data.w
      const doc = res.data || {}
      const known = doc.problem && doc.heading
      this.setData({
        screen: 'problem',
        problem: {
          kind: doc.problem || 'error',
          heading: known ? doc.heading : w.mp_error_heading,
          message: known ? doc.message : w.mp_error,
          retry: !known
        }
      })
    },

    // The subscription request must start inside the tap: WeChat refuses it from anywhere else.
    askSubscription: function () {
      const self = this
      const template = this._subscribe && this._subscribe.template_id
      if (this._asked || !template || typeof wx.requestSubscribeMessage !== 'function') return Promise.resolve()
      this._asked = true
      return new Promise(function (resolve) {
        wx.requestSubscribeMessage({
          tmplIds: [template],
          success: function (res) {
            const answer = res && res[template]
            if (ANSWERS[answer]) {
              api.post(self.data.baseUrl, '/api/mp/v1/subscriptions', { token: self.tokenOf(), result: answer },
                self.data.session).then(resolve)
            } else {
              resolve()
            }
          },
          fail: function () { resolve() } // no answer from the person (switched off, an old client): say nothing
        })
      })
    },

    onGrade: function (e) {
      const grade = e.currentTarget.dataset.grade
      const asked = this.askSubscription()
      this.setData({ grade: grade, error: '' })
      if (BAD[grade]) {
        this.setData({ screen: 'reasons' })
        return asked
      }
      const self = this
      return asked.then(function () { return self.submit() })
    },

    onReason: function (e) {
      const code = e.currentTarget.dataset.code
      const reasons = this.data.reasons.map(function (r) {
        return r.code === code ? { code: r.code, label: r.label, checked: !r.checked } : r
      })
      const needText = reasons.some(function (r) { return r.code === OTHER && r.checked })
      this.setData({ reasons: reasons, needText: needText, error: '' })
    },

    onText: function (e) {
      this.setData({ text: e.detail.value })
    },

    onBack: function () {
      this.setData({ screen: 'grade', error: '' })
    },

    onElder: function () {
      this.setData({ elderMode: !this.data.elderMode })
    },

    onRetry: function () {
      return this.load()
    },

    onSubmit: function () {
      const w = this.data.w
      const chosen = this.chosenReasons()
      const text = this.data.text.trim()
      if (!chosen.length && !text) {
        this.setData({ error: w.page_need_reason })
        return Promise.resolve()
      }
      if (chosen.indexOf(OTHER) >= 0 && !text) {
        this.setData({ error: w.page_need_text })
        return Promise.resolve()
      }
      return this.submit()
    },

    chosenReasons: function () {
      return this.data.reasons.filter(function (r) { return r.checked }).map(function (r) { return r.code })
    },

    submit: function () {
      const self = this
      const w = this.data.w
      if (this.data.submitting) return Promise.resolve()
      const bad = !!BAD[this.data.grade]
      const body = { token: this.tokenOf(), grade: this.data.grade }
      if (bad) {
        body.reasons = this.chosenReasons()
        if (this.data.text.trim()) body.text = this.data.text.trim()
      }
      this.setData({ submitting: true, error: '' })
      return api.post(this.data.baseUrl, '/api/mp/v1/ratings', body, this.data.session).then(function (res) {
        self.setData({ submitting: false })
        if (res.offline) {
          self.setData({ error: w.mp_offline }) // the choice stays on the screen: tap again when back online
          return
        }
        if (res.status === 201) {
          const next = res.data.next
          self.setData({ screen: 'done', next: next === 'work_order' ? w.mp_next_work_order : w.page_thanks_more })
          self.triggerEvent('rated', { grade: self.data.grade, next: next })
          return
        }
        if (res.status === 422) {
          const fields = (res.data.errors || []).map(function (e) { return e.field })
          self.setData({ error: fields.indexOf('text') >= 0 ? w.page_need_text
            : fields.indexOf('reasons') >= 0 ? w.page_need_reason : w.mp_error })
          return
        }
        self.showProblem(res)
      })
    }
  }
})

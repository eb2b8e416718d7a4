// The cases waiting for the person's rating. wx.login's code is exchanged by the service for its own session
// (POST /api/mp/v1/login): the openid never reaches the page. A tap opens the case's rating in <hcp-rating>.
const api = require('../../utils/api.js')
const i18n = require('../../i18n/index.js')

const SESSION = 'hcp.session'

function words() {
  const table = i18n.strings(i18n.systemLocale())
  const out = {}
  Object.keys(table).forEach(function (key) { out[key.replace(/\./g, '_')] = table[key] })
  return out
}

Component({
  data: { screen: 'loading', w: {}, cases: [], chosen: null, session: '', baseUrl: '', message: '' },
  methods: {
    onLoad: function () {
      this.setData({ w: words(), baseUrl: getApp().globalData.baseUrl })
      wx.setNavigationBarTitle({ title: this.data.w.mp_cases_title }) // the .json's is empty: the catalogs' words
      return this.refresh()
    },

    // A stored session still valid (the service's expires_at) is used; otherwise log in again.
    session: function () {
      const self = this
      const kept = wx.getStorageSync(SESSION)
      if (kept && kept.session && Date.parse(kept.expires_at) > Date.now() + 60000) {
        return Promise.resolve(kept.session)
      }
      return new Promise(function (resolve) {
        wx.login({
          success: function (res) {
            api.post(self.data.baseUrl, '/api/mp/v1/login', { code: res.code }).then(function (answer) {
              if (answer.status === 200) {
                wx.setStorageSync(SESSION, answer.data)
                resolve(answer.data.session)
              } else {
                resolve('')
              }
            })
          },
          fail: function () { resolve('') }
        })
      })
    },

    refresh: function () {
      const self = this
      const w = this.data.w
      this.setData({ screen: 'loading', chosen: null })
      return this.session().then(function (session) {
        if (!session) {
          self.setData({ screen: 'message', message: w.mp_login_failed })
          return
        }
        self.setData({ session: session })
        return api.get(self.data.baseUrl, '/api/mp/v1/cases', null, session).then(function (res) {
          if (res.offline) {
            self.setData({ screen: 'message', message: w.mp_offline })
          } else if (res.status === 401) {
            wx.removeStorageSync(SESSION) // expired or the key rotated: log in afresh next time
            self.setData({ screen: 'message', message: w.mp_login_failed })
          } else if (res.status !== 200) {
            self.setData({ screen: 'message', message: w.mp_error })
          } else {
            self.setData({ screen: res.data.cases.length ? 'list' : 'empty', cases: res.data.cases })
          }
        })
      })
    },

    onChoose: function (e) {
      const token = e.currentTarget.dataset.token
      const chosen = this.data.cases.filter(function (c) { return c.token === token })[0] || null
      this.setData({ chosen: chosen, screen: chosen ? 'rating' : this.data.screen })
    },

    onRated: function () {
      // the list is refreshed when the person goes back to it
    },

    onBackToList: function () {
      return this.refresh()
    },

    onRetry: function () {
      return this.refresh()
    }
  }
})

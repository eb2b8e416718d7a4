// The page the subscribe message opens: pages/rate/index?token=… (WECHAT_MP_PAGE). The rating link's token is all
// it needs: no log-in, as on the web rating page. Built with Component(), which WeChat accepts for a page. Its title
// is set here in the phone's language (the .json's is left empty: no word outside the catalogs).
const i18n = require('../../i18n/index.js')

Component({
  data: { ready: false, token: '', baseUrl: '', elder: false },
  methods: {
    onLoad: function (query) {
      const q = query || {}
      wx.setNavigationBarTitle({ title: i18n.strings(i18n.systemLocale())['page.title'] })
      this.setData({
        token: decodeURIComponent(q.token || ''),
        baseUrl: getApp().globalData.baseUrl,
        elder: q.elder === '1',
        ready: true
      })
    }
  }
})

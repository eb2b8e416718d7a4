// The rating mini-program: one page the subscribe message opens (pages/rate/index?token=…), one page listing the
// cases waiting for the person's rating (pages/cases/index). Both are the component components/hcp-rating.
const config = require('./config.js')

App({
  globalData: {
    baseUrl: config.baseUrl
  }
})

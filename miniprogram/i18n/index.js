// The mini-program's words, one table per language, generated from the service's Babel catalogs by
// scripts/mp_strings.py (never edited by hand: CI checks that they match the catalogs).
const TABLES = {
  zh_Hans: require('./zh_Hans.js'),
  zh_Hant: require('./zh_Hant.js'),
  en: require('./en.js')
}

// A WeChat language ("zh_CN", "zh_TW", "zh_HK", "en", …) or a service locale to one of ours; Chinese first.
function localeOf(tag) {
  const t = String(tag || '').replace('-', '_')
  if (TABLES[t]) return t
  const lower = t.toLowerCase()
  if (lower.indexOf('en') === 0) return 'en'
  if (lower === 'zh_tw' || lower === 'zh_hk' || lower === 'zh_mo' || lower.indexOf('hant') >= 0) return 'zh_Hant'
  return 'zh_Hans'
}

function systemLocale() {
  try {
    return localeOf(wx.getSystemInfoSync().language)
  } catch (e) {
    return 'zh_Hans'
  }
}

function strings(locale) {
  return TABLES[localeOf(locale)]
}

// "{until}" and the like, as the catalogs write placeholders.
function format(text, values) {
  return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
    return values && values[name] !== undefined ? values[name] : whole
  })
}

module.exports = { localeOf: localeOf, systemLocale: systemLocale, strings: strings, format: format }

// Where the service answers: the HTTPS origin of HAOCHAPING_PUBLIC_URL, which must also be listed as a
// "request 合法域名" in the mini-program's settings (README, WeChat). Edit before uploading.
module.exports = {
  baseUrl: 'https://hcp.example.gov.cn'
}

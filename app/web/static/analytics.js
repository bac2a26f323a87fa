// Analytics and chat, loaded only on pages the panel renders this script into: the
// operator switched the service on and the visitor accepted the cookie notice (the
// Content-Security-Policy of such a page allows exactly these services' hosts).
(function () {
  "use strict";
  var me = document.getElementById("analytics");
  if (!me) { return; }
  function load(src) {
    var tag = document.createElement("script");
    tag.async = true;
    tag.src = src;
    document.head.appendChild(tag);
  }
  var metrica = me.getAttribute("data-metrica");
  if (metrica) {
    window.ym = window.ym || function () { (window.ym.a = window.ym.a || []).push(arguments); };
    window.ym.l = Date.now();
    window.ym(Number(metrica), "init", { clickmap: true, trackLinks: true, accurateTrackBounce: true });
    load("https://mc.yandex.ru/metrika/tag.js");
  }
  var ga = me.getAttribute("data-ga");
  if (ga) {
    window.dataLayer = window.dataLayer || [];
    window.gtag = function () { window.dataLayer.push(arguments); };
    window.gtag("js", new Date());
    window.gtag("config", ga);
    load("https://www.googletagmanager.com/gtag/js?id=" + encodeURIComponent(ga));
  }
  var chaport = me.getAttribute("data-chaport");
  if (chaport) {
    window.chaportConfig = { appId: chaport };
    window.chaport = window.chaport || { q: {}, on: function (n, f) { (this.q[n] = this.q[n] || []).push(f); } };
    load("https://app.chaport.com/javascripts/insert.js");
  }
})();

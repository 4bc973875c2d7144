// The dashboard's charts (uPlot, vendored) and the Stream page's refresh. No data is fetched from
// anywhere but this server.
(function () {
  "use strict";
  var holder = document.getElementById("chart-data");
  if (holder && window.uPlot) {
    var charts = JSON.parse(holder.textContent);
    charts.forEach(function (c) {
      var el = document.querySelector('figure.chart[data-fb="' + c.fb_id + '"] .plot');
      if (!el) return;
      if (!c.t.length) { el.textContent = "No read of Facebook's matched size yet."; return; }
      var width = Math.max(260, el.clientWidth || 300);
      var opts = {
        width: width, height: 200,
        scales: { x: { time: true } },
        legend: { live: false },
        series: [
          {},
          { label: "members held", stroke: "#2d5bd7", width: 2 },
          { label: "matched (lower)", stroke: "#067647", width: 1.5, dash: [4, 4] },
          { label: "matched (upper)", stroke: "#067647", width: 1.5 }
        ],
        axes: [{}, { size: 60 }]
      };
      new uPlot(opts, [c.t, c.members, c.lower, c.upper], el);
      el.setAttribute("data-rendered", "1");
    });
  }
  var live = document.getElementById("stream");
  if (live) {
    setInterval(function () { window.location.reload(); }, 5000);
  }
})();

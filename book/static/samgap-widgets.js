// Serve the ipywidgets HTML manager's own assets (fonts, chunks) from this book's _static folder
// instead of a CDN: require.js resolves the manager's module URI through this path, and the
// manager derives its public path from that URI. Loaded after require.js, before embed-amd.js.
(function () {
  var root = document.documentElement.dataset.content_root || "./";
  if (window.require && window.require.config) {
    window.require.config({
      paths: { "@jupyter-widgets/html-manager/dist": root + "_static/html-manager" },
    });
  }
})();

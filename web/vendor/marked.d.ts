// Types for the marked ES module the server serves at /assets/vendor/marked.js (node_modules/marked).
export * from 'marked';

// Runs before the first paint (a classic script in <head>): applies the theme the user
// chose with the toggle; without a choice, CSS follows prefers-color-scheme.
try {
  var t = localStorage.getItem("warren-theme");
  if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
} catch (e) { /* storage unavailable */ }

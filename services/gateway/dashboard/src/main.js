// The first module, small: it starts the stored session's refresh, and the current page's first reads once the
// access token is there, while the rest of the app (app.js: the shell, the pages, the charts) is still being fetched
// (index.html preloads it) and compiled.
import "./styles.css";
import "uplot/dist/uPlot.min.css"; // after styles.css, as when charts.js imported it
import { hasStoredSession, preload, refresh } from "./api.js";
import { firstReads } from "./routes.js";

const session = hasStoredSession() ? refresh() : null;
session?.then(
  () => firstReads(location.pathname).forEach((read) => preload(...read)),
  () => {}, // app.js shows the login
);
import("./app.js").then(({ main }) => main(document.getElementById("root"), session));

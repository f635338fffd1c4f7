// Which page a path shows, and the reads a page's first chart waits for: main.js starts those as soon as the
// session's access token is there, before the rest of the app has loaded (api.js preload), and the page's own
// list() takes their answers.

export const EQUITY = ["/api/v1/equity", { limit: 500 }];

const FIRST_READS = { overview: [EQUITY] };

export function pageName(pathname) {
  return pathname.replace(/^\/app\/?/, "").split("/")[0] || "overview";
}

export function firstReads(pathname) {
  return FIRST_READS[pageName(pathname)] ?? [];
}

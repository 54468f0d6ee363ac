// axe-core over pages in headless Chromium: node axe_check.js CHROMIUM_PATH URL...
// Prints one JSON line per page ({url, violations: [{id, impact, help, nodes}]}) and exits 1
// when any violation is serious or critical. The pages' CSP forbids scripts, as it should:
// the check bypasses it to inject axe, and nothing else.
"use strict";
const puppeteer = require("puppeteer-core");
const axePath = require.resolve("axe-core");

async function main() {
  const [executablePath, ...urls] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  let failed = false;
  try {
    for (const url of urls) {
      for (const width of [1280, 390]) {
        const page = await browser.newPage();
        await page.setViewport({ width, height: 900 });
        await page.setBypassCSP(true);
        await page.goto(url, { waitUntil: "load", timeout: 30000 });
        await page.addScriptTag({ path: axePath });
        const result = await page.evaluate(async () => {
          // eslint-disable-next-line no-undef
          const found = await axe.run(document, { resultTypes: ["violations"] });
          return found.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
          }));
        });
        console.log(JSON.stringify({ url, width, violations: result }));
        if (result.some((v) => v.impact === "serious" || v.impact === "critical")) failed = true;
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => { console.error(err); process.exit(2); });

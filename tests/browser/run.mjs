// Browser checks of the taxpayers' pages, driven by tests/e2e/browser.rs: Debian's
// Chromium through playwright-core (no browser download). Reads a JSON config (argv[2])
// and prints one JSON object of findings on stdout; the Rust test asserts on them.
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = { steps: [] };
const step = (name, value) => { out.steps.push(name); out[name] = value; };

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ locale: "zh-CN" });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);

  // 1. Type the bill into the form and see its status.
  await page.goto(cfg.base + "/");
  await page.fill("#code", cfg.code);
  await page.fill("#number", cfg.number);
  await page.fill("#check_code", cfg.check.toUpperCase());
  await Promise.all([page.waitForURL("**/b/**"), page.click("button[type=submit]")]);
  step("form_banner", await page.$eval(".banner strong", (el) => el.firstChild.textContent.trim()));
  step("form_url", page.url());

  // A field error is shown before anything is sent (the browser's own check).
  await page.goto(cfg.base + "/");
  await page.fill("#code", "1234");
  await page.click("button[type=submit]");
  step("short_code_stays_on_form", new URL(page.url()).pathname === "/");
  step("short_code_invalid", await page.$eval("#code", (el) => !el.checkValidity()));

  // 2. One 未查到 page for a wrong check code and for an unknown bill.
  const wrong = await context.newPage();
  await wrong.goto(`${cfg.base}/b/${cfg.code}/${cfg.number}/${cfg.wrong_check}`);
  const wrongText = await wrong.innerText("main");
  await wrong.goto(`${cfg.base}/b/${cfg.code}/${cfg.unknown_number}/${cfg.wrong_check}`);
  const unknownText = await wrong.innerText("main");
  step("not_found_banner", await wrong.$eval(".banner strong", (el) => el.firstChild.textContent.trim()));
  step("not_found_same", wrongText.replace(cfg.number, "N") === unknownText.replace(cfg.unknown_number, "N"));
  await wrong.close();

  // 3. The in-browser proof check on the good bill, then on a tampered bundle.
  const resultUrl = `${cfg.base}/b/${cfg.code}/${cfg.number}/${cfg.check}`;
  await page.goto(resultUrl);
  await page.click("details.evidence summary");
  await page.click("#verify-button");
  await page.waitForFunction(() => ["pass", "fail"].includes(document.getElementById("verify-result").dataset.state));
  step("good_state", await page.$eval("#verify-result", (el) => el.dataset.state));
  step("good_text", await page.textContent("#verify-result"));
  step("good_ms", Number(await page.$eval("#verify-result", (el) => el.dataset.ms)));

  await page.route("**/v1/bills/*/*/proof*", (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: cfg.tampered_for_page }));
  await page.goto(resultUrl);
  await page.click("details.evidence summary");
  await page.click("#verify-button");
  await page.waitForFunction(() => ["pass", "fail"].includes(document.getElementById("verify-result").dataset.state));
  step("tampered_state", await page.$eval("#verify-result", (el) => el.dataset.state));
  step("tampered_link", await page.$eval("#verify-result", (el) => el.dataset.link));
  step("tampered_text", await page.textContent("#verify-result"));
  await page.unroute("**/v1/bills/*/*/proof*");

  // 4. Both verifiers on the same bundles: the JS one here, the Rust one in the test.
  const genesis = JSON.parse(readFileSync(cfg.genesis_file, "utf8"));
  const verdicts = {};
  for (const [name, file] of Object.entries(cfg.bundles)) {
    const text = readFileSync(file, "utf8");
    verdicts[name] = await page.evaluate(async ([t, g]) => {
      let b;
      try { b = JSON.parse(t); } catch (e) { return { ok: false, link: "decode" }; }
      const r = await window.ebillVerifier.check(b, g);
      return r.ok ? { ok: true, status: r.value.status } : { ok: false, link: r.error.link, reason: r.error.reason };
    }, [text, genesis]);
  }
  step("js_verdicts", verdicts);

  // 5. Screenshots at 375 px and 1280 px; the QR code from the page's screenshot.
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
    await page.goto(resultUrl);
    await page.screenshot({ path: `${cfg.out_dir}/result-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(resultUrl);
  await page.locator("figure.qr img").screenshot({ path: `${cfg.out_dir}/page-qr.png` });

  // The QR code route's SVG, rendered by Chromium.
  await page.goto(`${resultUrl}/qr.svg`);
  await page.screenshot({ path: `${cfg.out_dir}/qr-svg.png` });

  // The print page printed to PDF (A5).
  await page.goto(`${resultUrl}/print`);
  await page.emulateMedia({ media: "print" });
  await page.pdf({ path: `${cfg.out_dir}/print.pdf`, preferCSSPageSize: true, printBackground: true });
  await page.emulateMedia({ media: "screen" });

  // 6. The offline page with the network cut: first as served, then saved as one file.
  const offline = await context.newPage();
  await offline.goto(cfg.base + "/verify");
  const savedHtml = await (await context.request.get(cfg.base + "/verify")).text();
  writeFileSync(`${cfg.out_dir}/verify-saved.html`, savedHtml);
  let blocked = 0;
  await context.route("**/*", (route) => {
    if (route.request().url().startsWith("file:")) return route.continue();
    blocked++;
    return route.abort();
  });
  await context.setOffline(true);
  const runOffline = async (p) => {
    await p.setInputFiles("#bundle-file", cfg.bundles.good);
    await p.setInputFiles("#genesis-file", cfg.genesis_file);
    await p.waitForFunction(() => ["pass", "fail"].includes(document.getElementById("verify-result").dataset.state));
    return { state: await p.$eval("#verify-result", (el) => el.dataset.state), text: await p.textContent("#verify-result") };
  };
  step("offline_served", await runOffline(offline));
  const saved = await context.newPage();
  await saved.goto("file://" + `${cfg.out_dir}/verify-saved.html`);
  step("offline_saved", await runOffline(saved));
  await saved.setInputFiles("#bundle-file", cfg.bundles.certificate);
  await saved.waitForFunction(() => document.getElementById("verify-result").dataset.link === "certificate");
  step("offline_saved_tampered_link", await saved.$eval("#verify-result", (el) => el.dataset.link));
  step("offline_blocked_requests", blocked);
  await context.setOffline(false);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");

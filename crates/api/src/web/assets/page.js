// The result page's proof check: fetches the bill's proof bundle and the genesis from
// this node, checks that the genesis is the one the page names, and verifies every
// link in this browser (verify.js). Nothing here trusts the node's own verdict.
import { check, describe, genesisHash, bytesToHex } from "/static/verify.js";

window.ebillVerifier = { check, describe, genesisHash };

const box = document.getElementById("proof-check");
if (box) {
  const out = document.getElementById("verify-result");
  const lang = box.dataset.lang;
  const show = (result, ms) => {
    out.textContent = describe(result, lang, ms);
    out.className = result.ok ? "pass" : "fail";
    out.dataset.state = result.ok ? "pass" : "fail";
    out.dataset.link = result.ok ? "" : result.error.link;
  };
  document.getElementById("verify-button").addEventListener("click", async () => {
    out.textContent = lang === "en" ? "Verifying…" : "正在验证…";
    out.dataset.state = "running";
    const t0 = performance.now();
    let result;
    try {
      const [bundleResp, genesisResp] = await Promise.all([
        fetch(box.dataset.bundle, { cache: "no-store", credentials: "omit" }),
        fetch(box.dataset.genesis, { cache: "no-store", credentials: "omit" }),
      ]);
      if (!bundleResp.ok || !genesisResp.ok) throw new Error(`the node answered ${bundleResp.status}/${genesisResp.status}`);
      const bundle = await bundleResp.json();
      const genesis = await genesisResp.json();
      const gHash = bytesToHex(await genesisHash(genesis));
      if (gHash !== box.dataset.genesisHash) {
        result = { ok: false, error: { link: "genesis_hash", entry: null, reason: `the genesis served hashes to ${gHash}, the page names ${box.dataset.genesisHash}` } };
      } else {
        result = await check(bundle, genesis);
        if (result.ok) {
          const v = result.value;
          if (v.bill.code !== box.dataset.code || v.bill.number !== box.dataset.number) {
            result = { ok: false, error: { link: "bill_id", entry: null, reason: `the bundle proves bill ${v.bill.code}/${v.bill.number}` } };
          } else if (v.checkCode !== box.dataset.check) {
            result = { ok: false, error: { link: "check_code", entry: null, reason: `the issuer's signature gives check code ${v.checkCode}, not ${box.dataset.check}` } };
          }
        }
      }
    } catch (e) {
      result = { ok: false, error: { link: "decode", entry: null, reason: String(e && e.message ? e.message : e) } };
    }
    show(result, performance.now() - t0);
    out.dataset.ms = String(performance.now() - t0);
  });
}

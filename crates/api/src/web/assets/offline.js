// The offline page's glue (inlined after verify.js into GET /verify): reads a proof
// bundle and a genesis file dropped on the page or picked, and verifies them with no
// network at all.
{
  window.ebillVerifier = { check, describe, genesisHash };
  const drop = document.getElementById("drop");
  const out = document.getElementById("verify-result");
  const lang = drop.dataset.lang;
  const files = { bundle: null, genesis: null };
  const run = async () => {
    if (!files.bundle || !files.genesis) {
      out.textContent = lang === "en"
        ? `Waiting for ${files.bundle ? "the genesis file" : "the proof bundle"}…`
        : `请再选择${files.bundle ? "创世文件" : "证明文件"}…`;
      out.dataset.state = "waiting";
      return;
    }
    const t0 = performance.now();
    const result = await check(files.bundle, files.genesis);
    out.textContent = describe(result, lang, performance.now() - t0);
    out.className = result.ok ? "pass" : "fail";
    out.dataset.state = result.ok ? "pass" : "fail";
    out.dataset.link = result.ok ? "" : result.error.link;
  };
  const take = async (file, slot) => {
    let doc;
    try {
      if (file.size > 32 * 1024 * 1024) throw new Error("over 32 MiB");
      doc = JSON.parse(await file.text());
    } catch (e) {
      out.textContent = (lang === "en" ? "Not a JSON file: " : "不是 JSON 文件：") + file.name;
      out.dataset.state = "fail";
      out.dataset.link = "decode";
      return;
    }
    const kind = slot || (doc && Array.isArray(doc.entries) ? "bundle" : doc && Array.isArray(doc.validators) ? "genesis" : null);
    if (!kind) {
      out.textContent = (lang === "en" ? "Neither a proof bundle nor a genesis file: " : "既不是证明文件也不是创世文件：") + file.name;
      out.dataset.state = "fail";
      return;
    }
    files[kind] = doc;
    await run();
  };
  document.getElementById("bundle-file").addEventListener("change", (e) => e.target.files[0] && take(e.target.files[0], "bundle"));
  document.getElementById("genesis-file").addEventListener("change", (e) => e.target.files[0] && take(e.target.files[0], "genesis"));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) await take(f, null);
  });
}

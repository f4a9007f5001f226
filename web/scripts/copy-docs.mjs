// Copies Swagger UI from the swagger-ui-dist package into dist/docs, so the
// gateway serves /docs from its own origin (no CDN).
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const src = dirname(require.resolve("swagger-ui-dist/package.json"));
const out = new URL("../dist/docs/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
for (const f of ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"]) {
  copyFileSync(join(src, f), join(out, f));
}
writeFileSync(join(out, "init.js"), `window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "BaseLayout"
});
`);
writeFileSync(join(out, "index.html"), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kith API — try it</title>
<link rel="icon" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><main><h1 style="font:600 1.4rem system-ui,sans-serif;margin:1rem 1.25rem">Kith API</h1>
<p style="font:1rem system-ui,sans-serif;margin:0 1.25rem">Sign in with <code>POST /v1/sessions</code>, then press <b>Authorize</b> and paste the <code>access_token</code>. Machine-readable: <a href="/openapi.json">/openapi.json</a>. The app: <a href="/">/</a>.</p>
<div id="swagger-ui"></div></main>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script></body></html>
`);
console.log("docs: Swagger UI copied to dist/docs");

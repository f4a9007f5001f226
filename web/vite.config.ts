import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// `npm run dev` proxies the API to a gateway started by `make run`.
export default defineConfig({
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: Object.fromEntries(
      ["/v1", "/openapi.json", "/docs"].map((p) => [p, process.env.KITH_GATEWAY_URL ?? "http://127.0.0.1:8080"]),
    ),
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
} as any);

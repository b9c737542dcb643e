// Shared plumbing for the interop scripts: read one JSON plan on stdin, print one JSON
// result on stdout, collect Fedify's own log lines so a failed check says why.
import "./node20.mjs";
import { configure } from "@logtape/logtape";
import { getDocumentLoader } from "@fedify/fedify";

export const logs = [];

await configure({
  sinks: {
    memory(record) {
      const text = record.message.map((part) => (typeof part === "string" ? part : JSON.stringify(part)));
      logs.push(`${record.level} ${record.category.join(".")}: ${text.join("")}`);
    },
  },
  loggers: [
    { category: "fedify", lowestLevel: "debug", sinks: ["memory"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
  ],
});

/** Fedify's own fetch-based loader; loopback is allowed because the servers are local. */
export function loaders() {
  const loader = getDocumentLoader({ allowPrivateAddress: true });
  return { documentLoader: loader, contextLoader: loader };
}

/**
 * WebFinger on an acct: URI is always https in Fedify; the test servers speak plain http.
 * Only the scheme is rewritten, only for the hosts the plan names, so every byte Fedify
 * reads is still what our server answered.
 */
export function plainHttpFor(hosts) {
  const original = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol === "https:" && hosts.includes(url.host)) {
      url.protocol = "http:";
      return original(input instanceof Request ? new Request(url, input) : url, init);
    }
    return original(input, init);
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** Run `main(plan)` and print its result, or the error, as one JSON line. */
export async function run(main) {
  try {
    const plan = await readStdin();
    const result = await main(plan);
    process.stdout.write(JSON.stringify({ ok: true, result, logs }) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error?.stack ?? error), logs }) + "\n");
    process.exitCode = 1;
  }
}

export const ids = (iterable) => [...iterable].map((u) => u.href);
export const href = (u) => (u == null ? null : u.href);

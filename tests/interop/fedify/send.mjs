// Fedify as a remote server: it builds activities with its own vocabulary, signs them
// with its signRequest (draft-cavage or RFC 9421) and POSTs them to our inbox.
// Plan: {spec, keyId, privateKeyPem, sends: [{inbox, activity, tamper?}]} where activity is
// {type: "Follow", id, actor, object} or
// {type: "Create", id, actor, note: {id, inReplyTo, content, published, to, cc}}.
import { run } from "./lib.mjs";
import { Create, Follow, Note, importJwk, signRequest } from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";
import { createPrivateKey } from "node:crypto";

const urls = (list) => list.map((u) => new URL(u));

function build(spec) {
  if (spec.type === "Follow") {
    return new Follow({ id: new URL(spec.id), actor: new URL(spec.actor), object: new URL(spec.object) });
  }
  const n = spec.note;
  const note = new Note({
    id: new URL(n.id),
    attribution: new URL(spec.actor),
    replyTarget: new URL(n.inReplyTo),
    content: n.content,
    published: Temporal.Instant.from(n.published),
    tos: urls(n.to),
    ccs: urls(n.cc),
  });
  return new Create({
    id: new URL(spec.id), actor: new URL(spec.actor), object: note, tos: urls(n.to), ccs: urls(n.cc),
  });
}

await run(async (plan) => {
  // Fedify keys are WebCrypto keys; the PEM goes through JWK, Fedify's own import path
  // (which wants the RS256 algorithm named, as its own exportJwk writes it).
  const jwk = { ...createPrivateKey(plan.privateKeyPem).export({ format: "jwk" }), alg: "RS256" };
  const privateKey = await importJwk(jwk, "private");
  const results = [];
  for (const send of plan.sends) {
    const body = JSON.stringify(await build(send.activity).toJsonLd());
    const request = new Request(send.inbox, {
      method: "POST",
      headers: { "Content-Type": "application/activity+json", Accept: "application/activity+json" },
      body,
    });
    const signed = await signRequest(request, privateKey, new URL(plan.keyId), { spec: plan.spec });
    const headers = Object.fromEntries(signed.headers);
    // A tampered request keeps Fedify's signature headers over a changed body.
    const sent = send.tamper ? body.replace(send.tamper.from, send.tamper.to) : body;
    if (sent === body && send.tamper) throw new Error(`tamper target not found: ${send.tamper.from}`);
    const response = await fetch(new Request(signed.url, { method: "POST", headers: signed.headers, body: sent }));
    results.push({ status: response.status, answer: await response.text(), headers, body: JSON.parse(body) });
  }
  return { results };
});

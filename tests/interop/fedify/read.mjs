// Fedify reads our discovery documents: the actor (with its key), a post, WebFinger.
// Plan: {actor, post, acct, hosts}. Prints what Fedify's vocabulary parser made of them.
import { logs, loaders, plainHttpFor, run, ids, href } from "./lib.mjs";
import { Article, CryptographicKey, Person, fetchKey, lookupObject, lookupWebFinger } from "@fedify/fedify";

async function spki(cryptoKey) {
  const der = await crypto.subtle.exportKey("spki", cryptoKey);
  return Buffer.from(der).toString("base64");
}

async function collect(iterable, describe) {
  const out = [];
  for await (const item of iterable) out.push(await describe(item));
  return out;
}

async function describeKey(key) {
  if (key == null) return null;
  return {
    id: href(key.id),
    owner: href(key.ownerId),
    algorithm: key.publicKey.algorithm.name,
    hash: key.publicKey.algorithm.hash?.name ?? null,
    modulusLength: key.publicKey.algorithm.modulusLength ?? null,
    spki: await spki(key.publicKey),
  };
}

async function describeActor(actor, opts) {
  return {
    isPerson: actor instanceof Person,
    type: actor.constructor.typeId.href,
    id: href(actor.id),
    preferredUsername: actor.preferredUsername?.toString() ?? null,
    name: actor.name?.toString() ?? null,
    summary: actor.summary?.toString() ?? null,
    url: href(actor.url instanceof URL ? actor.url : actor.url?.href),
    inbox: href(actor.inboxId),
    outbox: href(actor.outboxId),
    followers: href(actor.followersId),
    following: href(actor.followingId),
    sharedInbox: href(actor.endpoints?.sharedInbox),
    manuallyApprovesFollowers: actor.manuallyApprovesFollowers,
    publicKeyIds: ids(actor.publicKeyIds),
    publicKey: await describeKey(await actor.getPublicKey(opts)),
    publicKeys: await collect(actor.getPublicKeys(opts), describeKey),
  };
}

async function describeArticle(article, opts) {
  const replies = await article.getReplies(opts);
  return {
    isArticle: article instanceof Article,
    type: article.constructor.typeId.href,
    id: href(article.id),
    name: article.name?.toString() ?? null,
    url: href(article.url instanceof URL ? article.url : article.url?.href),
    attributedTo: ids(article.attributionIds),
    to: ids(article.toIds),
    cc: ids(article.ccIds),
    content: article.content?.toString() ?? null,
    published: article.published?.toString() ?? null,
    sensitive: article.sensitive,
    context: ids(article.contextIds),
    tags: await collect(article.getTags(opts), (tag) => ({
      type: tag.constructor.typeId.href,
      name: tag.name?.toString() ?? null,
      href: href(tag.href),
    })),
    repliesId: href(article.repliesId),
    replies: replies && {
      type: replies.constructor.typeId.href,
      id: href(replies.id),
      totalItems: replies.totalItems,
    },
  };
}

await run(async (plan) => {
  plainHttpFor(plan.hosts);
  const opts = { ...loaders(), crossOrigin: "throw" };
  const actor = await lookupObject(plan.actor, opts);
  const article = await lookupObject(plan.post, opts);
  // fetchKey is what verifyRequest does with a keyId: fetch it, find it in the actor.
  const fetched = await fetchKey(new URL(`${plan.actor}#main-key`), CryptographicKey, opts);
  const jrd = await lookupWebFinger(plan.acct, { allowPrivateAddress: true });
  const self = jrd?.links?.find((link) => link.rel === "self") ?? null;
  const byHandle = await lookupObject(plan.acct, { ...opts, allowPrivateAddress: true });
  return {
    actor: actor && (await describeActor(actor, opts)),
    article: article && (await describeArticle(article, opts)),
    fetchedKey: await describeKey(fetched.key),
    webfinger: jrd && { subject: jrd.subject, aliases: jrd.aliases ?? [], self },
    byHandle: byHandle && { type: byHandle.constructor.typeId.href, id: href(byHandle.id) },
    errors: logs.filter((line) => line.startsWith("error")),
  };
});

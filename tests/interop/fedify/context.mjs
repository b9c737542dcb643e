// Fedify follows a post's `context` (FEP-7888) and reads the whole conversation through
// its collection (FEP-f228), every item dereferenced from its own origin.
// Plan: {post}. Prints the collection and each item as Fedify's vocabulary parser read it.
import { logs, loaders, run, ids, href } from "./lib.mjs";
import { Article, Note, lookupObject, traverseCollection } from "@fedify/fedify";

await run(async (plan) => {
  const opts = { ...loaders(), crossOrigin: "throw" };
  const article = await lookupObject(plan.post, opts);
  if (!(article instanceof Article)) throw new Error(`not an Article: ${plan.post}`);
  const [contextId] = ids(article.contextIds);
  const collection = await lookupObject(contextId, opts);
  const items = [];
  for await (const item of traverseCollection(collection, opts)) {
    items.push({
      type: item.constructor.typeId.href,
      isArticle: item instanceof Article,
      isNote: item instanceof Note,
      id: href(item.id),
      inReplyTo: href(item.replyTargetId),
      context: ids(item.contextIds),
      content: item.content?.toString() ?? null,
    });
  }
  return {
    contextId,
    collection: {
      type: collection.constructor.typeId.href,
      id: href(collection.id),
      totalItems: collection.totalItems,
      attributedTo: ids(collection.attributionIds),
    },
    items,
    errors: logs.filter((line) => line.startsWith("error")),
  };
});

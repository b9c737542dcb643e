// Fedify as a receiving server: it verifies requests fedcomments signed (as they arrived on
// the wire) with verifyRequest, fetching our key through its own document loader, and
// parses the bodies with its vocabulary.
// Plan: {spec, now, requests: [{label, method, url, headers, body}]}; body may be null.
import { loaders, logs, run, ids, href } from "./lib.mjs";
import { Activity, verifyRequest } from "@fedify/fedify";
import { Temporal } from "@js-temporal/polyfill";

async function describeActivity(text, opts) {
  const activity = await Activity.fromJsonLd(JSON.parse(text), opts);
  // By default Fedify refetches an embedded object whose id is on another origin (our
  // Accept embeds the follower's Follow); "trust" reads the embedded copy we wrote.
  const inner = await activity.getObject({ ...opts, crossOrigin: "trust" });
  return {
    type: activity.constructor.typeId.href,
    id: href(activity.id),
    actor: href(activity.actorId),
    to: ids(activity.toIds),
    objectId: href(activity.objectId),
    object: inner && {
      type: inner.constructor.typeId.href,
      id: href(inner.id),
      actor: href(inner.actorId),
      object: href(inner.objectId),
    },
  };
}

await run(async (plan) => {
  const opts = loaders();
  const results = [];
  for (const req of plan.requests) {
    const before = logs.length;
    const request = new Request(req.url, { method: req.method, headers: req.headers, body: req.body });
    const key = await verifyRequest(request, {
      ...opts,
      spec: plan.spec,
      currentTime: Temporal.Instant.from(plan.now),
    });
    results.push({
      label: req.label,
      key: key && { id: href(key.id), owner: href(key.ownerId) },
      // Fedify's reasons for refusing, from its own log.
      why: logs.slice(before).filter((line) => line.includes("Failed to verify")),
      activity: req.body == null ? null : await describeActivity(req.body, opts),
    });
  }
  return { results };
});

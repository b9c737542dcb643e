/* fedcomments widget: renders the thread and the comment form into
   <div id="fedcomments" data-url="PERMALINK"></div> using the JSON API of the server this
   script comes from. No framework, no cookies; it requests nothing from anyone but that
   server (images included, unless the server hot-links them: [media] proxy = false); no
   inline styles or scripts, so it runs under a strict Content-Security-Policy. */
(function () {
  "use strict";
  var script = document.currentScript;
  var root = document.getElementById("fedcomments");
  if (!script) return;
  var base = new URL(script.src, location.href).origin;
  if (!root) {
    // The server's own "reply from your fediverse account" page: remember the address.
    var acct = document.querySelector(".fc-interact-page input[name=acct]");
    var key = "fedcomments:" + base + ":acct";
    try {
      if (acct && !acct.value) acct.value = JSON.parse(localStorage.getItem(key) || '""');
      if (acct) acct.form.addEventListener("submit", function () {
        localStorage.setItem(key, JSON.stringify(acct.value.trim()));
      });
    } catch (e) { /* storage disabled */ }
    return;
  }
  var permalink = root.getAttribute("data-url") || location.href.split("#")[0];
  var KEY = "fedcomments:" + base + ":";
  var state = { thread: null, token: null, limits: {}, form: null, parent: null, own: {} };

  // --- small helpers --------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined && c !== false) {
        node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      }
    });
    return node;
  }
  function safeUrl(u) {
    try {
      var url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) { return null; }
  }
  function store(name, value) {
    try {
      if (value === undefined) return JSON.parse(localStorage.getItem(KEY + name) || "null");
      if (value === null) localStorage.removeItem(KEY + name);
      else localStorage.setItem(KEY + name, JSON.stringify(value));
    } catch (e) { return null; }  // storage disabled: the widget still works
    return null;
  }
  function when(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
  async function api(method, path, body, headers, fresh) {
    var opts = { method: method, mode: "cors", credentials: "omit", headers: headers || {} };
    if (body !== undefined) {
      opts.body = JSON.stringify(body);
      opts.headers["Content-Type"] = "application/json";
    }
    if (fresh) opts.cache = "no-cache";  // after a change: revalidate with the ETag
    var resp = await fetch(base + path, opts);
    var data = {};
    try { data = await resp.json(); } catch (e) { data = { error: "unexpected answer" }; }
    return { ok: resp.ok, status: resp.status, data: data };
  }

  // Content arrives sanitised by the server; it is parsed inertly and copied through an
  // allowlist once more, so a bug on one side is not enough for script to run.
  var TAGS = ["P", "BR", "SPAN", "A", "DEL", "PRE", "CODE", "EM", "STRONG", "B", "I", "U", "S",
              "SUB", "SUP", "BLOCKQUOTE", "UL", "OL", "LI"];
  var CLASSES = ["h-card", "mention", "hashtag", "u-url", "invisible", "ellipsis"];
  function cleanNodes(from, to) {
    from.childNodes.forEach(function (n) {
      if (n.nodeType === 3) { to.appendChild(document.createTextNode(n.nodeValue)); return; }
      if (n.nodeType !== 1) return;
      if (TAGS.indexOf(n.tagName) < 0) { cleanNodes(n, to); return; }
      var copy = document.createElement(n.tagName.toLowerCase());
      if (n.tagName === "A") {
        var href = safeUrl(n.getAttribute("href"));
        if (href) copy.setAttribute("href", href);
        copy.setAttribute("rel", "nofollow noopener noreferrer ugc");
      }
      var cls = (n.getAttribute("class") || "").split(/\s+/).filter(function (c) {
        return CLASSES.indexOf(c) >= 0;
      });
      if (cls.length) copy.setAttribute("class", cls.join(" "));
      to.appendChild(copy);
      cleanNodes(n, copy);
    });
    return to;
  }
  function content(html, emojis) {
    var doc = new DOMParser().parseFromString(html || "", "text/html");
    return withEmoji(cleanNodes(doc.body, el("div", { class: "fc-content" })), emojis);
  }
  // Custom emoji, as Mastodon shows them: each :shortcode: of a text node becomes its image.
  function emojiImg(e) {
    return el("img", { class: "fc-emoji", src: safeUrl(e.url), srcset: e.url_2x && safeUrl(e.url_2x)
      ? safeUrl(e.url_2x) + " 2x" : null, alt: ":" + e.shortcode + ":", title: ":" + e.shortcode + ":",
      width: e.width, height: e.height, draggable: "false", referrerpolicy: "no-referrer" });
  }
  function emojiNodes(text, table) {
    var out = [], last = 0, re = /:([A-Za-z0-9_+\-]{1,64}):/g, m;
    while ((m = re.exec(text)) !== null) {
      if (!table[m[1]]) continue;
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(emojiImg(table[m[1]]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }
  function emojiTable(emojis) {
    // No prototype: a word like :constructor: or an emoji named __proto__ is no key of it.
    var table = Object.create(null), any = false;
    (emojis || []).forEach(function (e) { if (e.shortcode && safeUrl(e.url)) { table[e.shortcode] = e; any = true; } });
    return any ? table : null;
  }
  function withEmoji(node, emojis) {
    var table = emojiTable(emojis);
    if (!table) return node;
    var walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT), texts = [];
    while (walker.nextNode()) texts.push(walker.currentNode);
    texts.forEach(function (t) {
      var parts = emojiNodes(t.nodeValue, table);
      if (parts.length === 1 && typeof parts[0] === "string") return;
      parts.forEach(function (p) {
        t.parentNode.insertBefore(typeof p === "string" ? document.createTextNode(p) : p, t);
      });
      t.parentNode.removeChild(t);
    });
    return node;
  }
  function emojiText(text, emojis) {
    var table = emojiTable(emojis);
    return table ? emojiNodes(text || "", table) : [text || ""];
  }

  // --- rendering (the same markup as the server-rendered page) ---------------------------
  function avatar(a) {
    var src = a.avatar && safeUrl(a.avatar);
    var src2 = a.avatar_2x && safeUrl(a.avatar_2x);
    if (src) {
      return el("img", { class: "fc-avatar", src: src, srcset: src2 ? src2 + " 2x" : null, alt: "",
                         width: 40, height: 40, loading: "lazy", referrerpolicy: "no-referrer" });
    }
    return el("span", { class: "fc-avatar fc-avatar-none", "aria-hidden": "true",
                        text: (a.name || "?").slice(0, 1) });
  }
  function reactions(r) {
    if (!r || (!r.likes && !r.boosts)) return null;
    var faces = (r.people || []).map(function (p) {
      var face2 = p.avatar_2x && safeUrl(p.avatar_2x);
      var img = p.avatar && safeUrl(p.avatar)
        ? el("img", { src: safeUrl(p.avatar), srcset: face2 ? face2 + " 2x" : null, alt: p.name,
                      width: 20, height: 20, loading: "lazy", referrerpolicy: "no-referrer" })
        : el("span", { class: "fc-face", "aria-label": p.name, text: p.name.slice(0, 1) });
      var url = p.url && safeUrl(p.url);
      return url ? el("a", { href: url, rel: "nofollow noopener", title: p.name }, [img]) : img;
    });
    return el("p", { class: "fc-reactions" }, [
      r.likes ? el("span", { class: "fc-likes", text: plural(r.likes, "like", "likes") }) : null,
      r.boosts ? el("span", { class: "fc-boosts", text: plural(r.boosts, "boost", "boosts") }) : null,
      faces.length ? el("span", { class: "fc-facepile" }, faces) : null,
    ]);
  }
  function interact(objectId, label) {
    var input = el("input", { type: "text", name: "acct", placeholder: "@you@mastodon.social",
                              autocomplete: "username", required: true, spellcheck: "false",
                              value: store("acct") || "" });
    var result = el("p", { class: "fc-interact-result", role: "status" });
    var form = el("form", { class: "fc-interact-form", method: "post", action: base + "/interact" }, [
      el("input", { type: "hidden", name: "object", value: objectId }),
      el("label", {}, ["Your fediverse address ", input]),
      el("button", { type: "submit", text: "Open on my instance" }), result,
    ]);
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      result.textContent = "";
      var r = await api("POST", "/api/v1/interact", { acct: input.value, object: objectId });
      if (!r.ok) { result.textContent = r.data.error || "Something went wrong."; return; }
      store("acct", r.data.handle);
      var target = r.data.redirect && safeUrl(r.data.redirect);
      if (target) { location.assign(target); return; }
      result.textContent = (r.data.problem || "") + " Copy this address into the search box " +
        "of your fediverse app and reply there: ";
      result.appendChild(el("code", { text: r.data.object }));
    });
    return el("details", { class: "fc-interact" }, [el("summary", { text: label }), form]);
  }
  function body(c) {
    var a = c.author;
    var profile = a.url && safeUrl(a.url);
    var site = a.website && safeUrl(a.website);
    var name = profile || site
      ? el("a", { class: "fc-name", href: profile || site, rel: profile ? "nofollow noopener" : "nofollow ugc noopener" }, emojiText(a.name, a.emojis))
      : el("span", { class: "fc-name" }, emojiText(a.name, a.emojis));
    var original = c.url && safeUrl(c.url);
    var time = el("time", { datetime: c.published, text: when(c.published) });
    var head = el("header", { class: "fc-head" }, [
      avatar(a),
      el("span", { class: "fc-author" }, [
        name,
        a.handle ? " " : null,
        a.handle ? el(profile ? "a" : "span", { class: "fc-handle", href: profile, rel: profile ? "nofollow noopener" : null, text: a.handle }) : null,
        a.kind === "owner" ? " " : null,
        a.kind === "owner" ? el("span", { class: "fc-badge", text: "author" }) : null,
      ]),
      el("span", { class: "fc-when" }, [
        el("a", { href: original || "#comment-" + c.id, rel: original ? "nofollow noopener" : null }, [time]),
        c.edited ? " " : null,
        c.edited ? el("span", { class: "fc-edited", title: when(c.updated), text: "edited" }) : null,
      ]),
      c.reply_to ? el("span", { class: "fc-reply-to" }, ["in reply to ",
        el("a", { href: "#comment-" + c.reply_to.id, text: c.reply_to.name })]) : null,
    ]);
    var text = content(c.content, c.emojis);
    var main = c.sensitive
      ? el("details", { class: "fc-cw" }, [el("summary", {}, c.summary ? emojiText(c.summary, c.emojis) : ["Sensitive content"]), text])
      : text;
    var files = (c.attachments || []).filter(function (f) { return safeUrl(f.url); });
    var actions = el("footer", { class: "fc-actions" }, [reactions(c.reactions)]);
    if (c.status === "approved") {
      var reply = el("button", { type: "button", class: "fc-link fc-reply", text: "Reply",
                                 "aria-label": "Reply to " + a.name });
      reply.addEventListener("click", function () { replyTo(c); });
      actions.appendChild(reply);
      if (c.ap_id) actions.appendChild(interact(c.ap_id, "Reply from your fediverse account"));
    }
    var own = state.own[c.id];
    if (own && Date.parse(own.until) > Date.now()) ownActions(c, actions, own);
    var shown = [
      head, main,
      files.length ? el("ul", { class: "fc-attachments" }, files.map(function (f) {
        var t = f.thumbnail, thumb = t && safeUrl(t.url);
        if (thumb) {
          // A thumbnail served by the comment server, linking to the original on its own
          // server: opening it is the reader's choice.
          return el("li", { class: "fc-thumb" }, [el("a", { href: safeUrl(f.url), rel: "nofollow noopener ugc" }, [
            el("img", { src: thumb, srcset: t.url_2x && safeUrl(t.url_2x) ? safeUrl(t.url_2x) + " 2x" : null,
                        alt: f.name || "", width: t.width, height: t.height, loading: "lazy",
                        referrerpolicy: "no-referrer" })])]);
        }
        return el("li", {}, [el("a", { href: safeUrl(f.url), rel: "nofollow noopener ugc",
          text: f.name || f.url.split("/").pop() || "attachment" }),
          f.media_type ? el("span", { class: "fc-media-type", text: " (" + f.media_type + ")" }) : null]);
      })) : null,
    ];
    // The author asked search engines not to index what they write (indexable: false).
    if (c.nosnippet) shown = [el("div", { class: "fc-nosnippet", "data-nosnippet": true }, shown)];
    return el("article", { class: "fc-body", "aria-label": "Comment by " + a.name },
              shown.concat([actions]));
  }
  function comment(c) {
    var li = el("li", { class: "fc-comment " + (c.deleted ? "fc-deleted" : "fc-origin-" + c.origin) +
                        (c.status === "pending" ? " fc-pending" : ""), id: "comment-" + c.id });
    if (c.deleted) li.appendChild(el("p", { class: "fc-deleted-note", text: "This comment was deleted." }));
    else {
      if (c.status === "pending") {
        li.appendChild(el("p", { class: "fc-pending-label", text: "Waiting for approval — only you can see this comment." }));
      }
      li.appendChild(body(c));
    }
    if (c.replies && c.replies.length) li.appendChild(el("ol", { class: "fc-replies" }, c.replies.map(comment)));
    return li;
  }

  // --- the author's own comments: pending ones, edit and delete ----------------------------
  function ownActions(c, actions, own) {
    var edit = el("button", { type: "button", class: "fc-link", text: "Edit" });
    var del = el("button", { type: "button", class: "fc-link", text: "Delete" });
    var headers = { "X-Comment-Secret": own.secret };
    edit.addEventListener("click", function () {
      var box = el("textarea", { "aria-label": "Edit your comment", rows: 4 });
      box.value = own.text || "";
      var save = el("button", { type: "button", text: "Save" });
      var out = el("span", { class: "fc-error", role: "status" });
      save.addEventListener("click", async function () {
        var r = await api("PATCH", "/api/v1/comments/" + c.id, { text: box.value }, headers);
        if (!r.ok) { out.textContent = r.data.error; return; }
        own.text = box.value; saveOwn(); load(true);
      });
      actions.appendChild(el("div", { class: "fc-field" }, [box, el("span", {}, [save]), out]));
      box.focus();
    });
    del.addEventListener("click", async function () {
      if (del.getAttribute("data-confirm") !== "1") {
        del.setAttribute("data-confirm", "1"); del.textContent = "Really delete?"; return;
      }
      var r = await api("DELETE", "/api/v1/comments/" + c.id, undefined, headers);
      if (r.ok || r.status === 404) { delete state.own[c.id]; saveOwn(); load(true); }
    });
    actions.appendChild(edit);
    actions.appendChild(del);
  }
  function saveOwn() {
    var keep = {};
    var week = 7 * 24 * 3600 * 1000;
    Object.keys(state.own).forEach(function (id) {
      if (Date.parse(state.own[id].until) + week > Date.now()) keep[id] = state.own[id];
    });
    state.own = keep;
    store("own", keep);
  }
  async function addPending(thread) {
    var shown = {};
    (function walk(list) { list.forEach(function (c) { shown[c.id] = true; walk(c.replies); }); })(thread.comments);
    var ids = Object.keys(state.own).filter(function (id) {
      return !shown[id] && state.own[id].post === thread.post.id;
    });
    for (var i = 0; i < ids.length; i++) {
      var r = await api("GET", "/api/v1/comments/" + ids[i], undefined,
                        { "X-Comment-Secret": state.own[ids[i]].secret }, true);
      if (r.status === 404) { delete state.own[ids[i]]; continue; }
      // Pending ones only their author sees; a published one may be missing from a thread
      // rendered a moment before it arrived.
      if (r.ok && !r.data.comment.deleted) state.pending.push(r.data.comment);
    }
    saveOwn();
  }

  // --- the form ---------------------------------------------------------------------------
  function field(name, label, type, hint, required, auto) {
    var id = "fc-" + name;
    var input = type === "textarea"
      ? el("textarea", { id: id, name: name, rows: 5, required: required, maxlength: state.limits[name] })
      : el("input", { type: type, id: id, name: name, required: required, autocomplete: auto,
                      maxlength: state.limits[name] });
    return el("p", { class: "fc-field" }, [
      el("label", { for: id }, [label, hint ? el("span", { class: "fc-hint", text: " (" + hint + ")" }) : null]),
      input, el("span", { class: "fc-error", id: id + "-error" }),
    ]);
  }
  function check(name, label, hint) {
    var id = "fc-" + name;
    return el("p", { class: "fc-field fc-check" }, [
      el("input", { type: "checkbox", id: id, name: name, value: "1" }), " ",
      el("label", { for: id }, [label, hint ? el("span", { class: "fc-hint", text: " (" + hint + ")" }) : null]),
    ]);
  }
  function privacy(p) {
    if (!p || (!p.url && !p.text)) return null;
    var url = p.url && safeUrl(p.url);
    var text = p.text || "Learn how your comment data is processed.";
    return el("p", { class: "fc-privacy" }, [
      url ? el("a", { href: url, rel: "noopener", text: text }) : text]);
  }
  function buildForm() {
    var notice = el("p", { class: "fc-notice", role: "status", "aria-live": "polite" });
    var replying = el("p", { class: "fc-replying", hidden: true });
    var submit = el("button", { type: "submit", text: "Post comment" });
    var form = el("form", { class: "fc-form", id: "fc-form", novalidate: true }, [
      el("h3", { text: "Leave a comment" }), notice, replying,
      el("div", { class: "fc-hp", "aria-hidden": "true" }, [
        el("label", { for: "fc-homepage", text: "Leave this field empty" }),
        el("input", { type: "text", id: "fc-homepage", name: "homepage", tabindex: "-1", autocomplete: "off" }),
      ]),
      field("name", "Name", "text", "", true, "name"),
      field("email", "Email", "email", "optional, never shown", false, "email"),
      field("website", "Website", "url", "optional", false, "url"),
      field("text", "Comment", "textarea", "", true),
      state.notify ? check("notify", "Email me when someone replies",
                           "we mail you a link to confirm") : null,
      check("remember", "Remember my name, email and website in this browser",
            "kept in this browser only; untick to forget them"),
      el("p", { class: "fc-error", "data-for": "form" }),
      el("p", { class: "fc-submit" }, [submit, " ",
        el("span", { class: "fc-hint", text: "Plain text; links become clickable." })]),
      privacy(state.privacy),
    ]);
    // Remembered only when the reader asked (opt-in), in this browser only; unticking
    // the box forgets at once.
    var saved = store("reader");
    var remember = form.elements.namedItem("remember");
    remember.checked = !!saved;
    ["name", "email", "website"].forEach(function (k) {
      if (saved && saved[k]) form.elements.namedItem(k).value = saved[k];
    });
    remember.addEventListener("change", function () {
      if (!remember.checked) store("reader", null);
    });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); send(form, notice, submit); });
    state.form = { node: form, notice: notice, replying: replying };
    return form;
  }
  function replyTo(c) {
    var f = state.form;
    state.parent = c ? c.id : null;
    f.replying.textContent = "";
    f.replying.hidden = !c;
    if (c) {
      var cancel = el("button", { type: "button", class: "fc-link", text: "cancel" });
      cancel.addEventListener("click", function () { replyTo(null); });
      f.replying.append("Replying to ", el("a", { href: "#comment-" + c.id, text: c.author.name }), " · ", cancel);
      f.node.elements.namedItem("text").focus();
    }
  }
  function showErrors(form, errors) {
    form.querySelectorAll(".fc-error").forEach(function (e) { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (e) {
      e.removeAttribute("aria-invalid"); e.removeAttribute("aria-describedby");
    });
    var first = null;
    Object.keys(errors || {}).forEach(function (name) {
      var input = form.elements.namedItem(name);
      var slot = input && input.type !== "hidden" && name !== "homepage"
        ? form.querySelector("#fc-" + name + "-error") : form.querySelector('[data-for="form"]');
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + errors[name];
      if (input && input.type !== "hidden" && name !== "homepage") {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", "fc-" + name + "-error");
        first = first || input;
      }
    });
    if (first) first.focus();
  }
  async function send(form, notice, submit) {
    var f = function (name) { return form.elements.namedItem(name); };
    var payload = { post: String(state.thread.post.id), parent: state.parent ? String(state.parent) : "",
                    name: f("name").value, email: f("email").value, website: f("website").value,
                    text: f("text").value, token: state.token, homepage: f("homepage").value };
    if (f("notify") && f("notify").checked) payload.notify = "1";
    submit.disabled = true;
    notice.textContent = "";
    notice.classList.remove("fc-notice-error");
    var r;
    try { r = await api("POST", "/api/v1/comments", payload); }
    catch (e) { r = { ok: false, data: { error: "The comment server cannot be reached." } }; }
    submit.disabled = false;
    if (!r.ok) {
      notice.classList.add("fc-notice-error");
      notice.textContent = "Your comment was not saved: " + (r.data.errors ? "please correct the fields marked below." : r.data.error);
      showErrors(form, r.data.errors || {});
      if (r.data.field === "token") refreshToken();
      return;
    }
    showErrors(form, {});
    if (f("remember").checked) {
      store("reader", { name: f("name").value, email: f("email").value, website: f("website").value });
    } else {
      store("reader", null);
    }
    if (f("notify")) f("notify").checked = false;
    state.own[r.data.comment.id] = { secret: r.data.secret, until: r.data.edit_until,
                                     post: state.thread.post.id, text: f("text").value };
    saveOwn();
    f("text").value = "";
    replyTo(null);
    await load(true);
    state.form.notice.textContent = r.data.pending
      ? "Thank you! Your comment is waiting for approval; only you can see it for now."
      : "Thank you! Your comment is published.";
  }
  async function refreshToken() {
    var r = await api("GET", "/api/v1/form?post=" + state.thread.post.id, undefined, {}, true);
    if (r.ok) {
      state.token = r.data.token; state.limits = r.data.limits;
      state.notify = !!r.data.notify; state.privacy = r.data.privacy || null;
    }
  }

  // --- loading ----------------------------------------------------------------------------
  function insertPending(list, c) {
    var target = c.parent_id && document.getElementById("comment-" + c.parent_id);
    if (!target) { list.appendChild(comment(c)); return; }
    var replies = target.querySelector(":scope > .fc-replies");
    if (!replies) { replies = el("ol", { class: "fc-replies" }); target.appendChild(replies); }
    replies.appendChild(comment(c));
  }
  async function load(fresh) {
    var r = await api("GET", "/api/v1/thread?url=" + encodeURIComponent(permalink), undefined, {}, fresh);
    if (!r.ok) {
      root.textContent = "";
      root.appendChild(el("p", { class: "fc-error", text: "Comments are not available: " + (r.data.error || r.status) }));
      return;
    }
    var t = r.data;
    state.thread = t;
    state.pending = [];
    await addPending(t);
    if (!state.token) await refreshToken();
    var list = el("ol", { class: "fc-thread" }, t.comments.map(comment));
    var section = el("section", { class: "fc-thread-section", "aria-labelledby": "fc-count" }, [
      el("h2", { id: "fc-count", class: "fc-count",
                 text: t.count === 0 ? "No comments yet" : plural(t.count, "comment", "comments") }),
      reactions(t.reactions),
      interact(t.post.ap_id, "Reply to the post from your fediverse account"),
      list,
      state.form ? state.form.node : buildForm(),
    ]);
    root.textContent = "";
    root.appendChild(section);
    state.pending.forEach(function (c) { insertPending(list, c); });
    // The widget has replaced the server-rendered thread and its form: a hook for pages
    // (and tests) that must not act on the no-JavaScript markup it replaces.
    root.setAttribute("data-fc-ready", "");
  }

  root.classList.add("fc-widget");
  if (!document.querySelector('link[href="' + base + '/static/embed.css"]') &&
      !Array.prototype.some.call(document.styleSheets, function (s) { return s.href === base + "/static/embed.css"; }) &&
      !root.hasAttribute("data-no-css")) {
    document.head.appendChild(el("link", { rel: "stylesheet", href: base + "/static/embed.css" }));
  }
  state.own = store("own") || {};
  load();
})();

// The browser part of an OAuth flow, played headlessly for tests: opens the authorization URL
// as the signed-in Gatehouse user (session cookie), answers the consent form, and follows
// redirects until the browser would leave for the client's callback, whose URL it returns.

/**
 * @param {string} authorizeUrl
 * @param {string} session Gatehouse session JWT (the `gatehouse_session` cookie)
 * @param {(url: URL) => boolean} isCallback recognises the client's redirect URI
 * @param {string} decision "allow" or "deny"
 */
export async function browse(authorizeUrl, session, isCallback, decision = 'allow') {
  let url = String(authorizeUrl);
  let init = { method: 'GET' };
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { cookie: `gatehouse_session=${session}`, ...(init.headers ?? {}) } });
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url);
      if (isCallback(next)) return next;
      url = next.href;
      init = { method: 'GET' };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const form = html.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
    if (!form) throw new Error(`no form at ${url}`);
    const fields = new URLSearchParams();
    for (const input of form[2].matchAll(/<input[^>]*>/gi)) {
      const name = input[0].match(/name="([^"]+)"/)?.[1];
      const value = input[0].match(/value="([^"]*)"/)?.[1] ?? '';
      if (name) fields.set(name, value.replaceAll('&amp;', '&'));
    }
    fields.set('decision', decision);
    url = new URL(form[1] || url, url).href;
    init = { method: 'POST', body: fields.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('too many redirects');
}

/** Delivers the redirect to a client's local callback server, retrying while it starts. */
export async function deliver(callbackUrl) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(callbackUrl);
    } catch (e) {
      if (attempt > 40) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

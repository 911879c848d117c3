// A real OpenID Connect provider (panva's oidc-provider) for Gatehouse's tests, on loopback.
//
//   node end2end/support/oidc-provider.mjs [--port N] [--no-userinfo]
//
// Prints one JSON line {"issuer": "...", "port": N} once it listens, then serves until killed.
// Sign-in is an email field (no password): whoever types an address is that user, with
// email_verified=true. A "Deny" button refuses the login (error=access_denied). Consent is
// granted automatically. The client "gatehouse-test" / "gatehouse-test-secret" is registered as
// a native app with a loopback redirect, so any Gatehouse port matches (RFC 8252 §7.3).
// --no-userinfo turns the userinfo endpoint off, so the email must come from the id_token.

import http from 'node:http';
import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

const port = Number(option('--port', process.env.OIDC_PORT ?? '0'));
const noUserinfo = flag('--no-userinfo');

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const readForm = (req) =>
  new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10_000) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'gatehouse-test',
        client_secret: 'gatehouse-test-secret',
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/auth/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, email: sub, email_verified: true };
        },
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Without userinfo the email has to travel in the id_token.
    conformIdTokenClaims: !noUserinfo,
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: !noUserinfo },
      registration: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['gatehouse-test-cookie-key'] },
    pkce: { required: () => true },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));

  const oidc = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/favicon.ico') {
      // Browsers ask for it; a 404 would show up as a console error in the tests.
      res.writeHead(204);
      return res.end();
    }
    const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?$/);
    if (!match) return oidc(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const action = match[2];
      if (req.method === 'POST' && action === 'login') {
        const form = await readForm(req);
        const email = (form.get('email') ?? '').trim().toLowerCase();
        return provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
      }
      if (req.method === 'POST' && action === 'abort') {
        return provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'End-User aborted interaction' },
          { mergeWithLastSubmission: false },
        );
      }
      if (details.prompt.name === 'login') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(`<!doctype html><html><head><title>Test identity provider</title></head><body>
<h1>Test identity provider</h1>
<p>Signing in to ${escapeHtml(details.params.client_id)}</p>
<form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
  <label>Email <input name="email" type="email" autofocus required></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(details.uid)}/abort"><button type="submit">Deny</button></form>
</body></html>`);
      }
      // Consent: grant whatever was asked.
      const { prompt, params, session } = details;
      const grant = prompt.details.grantId
        ? await provider.Grant.find(prompt.details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      if (prompt.details.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      console.error('interaction failed', err);
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}`);
    }
  });

  console.log(JSON.stringify({ issuer, port: actualPort }));
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));

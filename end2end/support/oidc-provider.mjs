// A real OpenID Connect provider (panva's oidc-provider) for Gatehouse's tests, on loopback.
//
//   node end2end/support/oidc-provider.mjs [--port N] [--no-userinfo]
//       [--connections [--access-token-format jwt|opaque] [--access-token-ttl SECONDS]
//                      [--resource-prefix URL_PREFIX] [--cimd]]
//       [--tls-cert FILE --tls-key FILE]
//
// Prints one JSON line {"issuer": "...", "port": N} once it listens, then serves until killed.
// --tls-cert/--tls-key serve https instead, and the issuer is https://127.0.0.1:N.
// Sign-in is an email field (no password): whoever types an address is that user, with
// email_verified=true. A "Deny" button refuses the login (error=access_denied). Consent is
// granted automatically. The client "gatehouse-test" / "gatehouse-test-secret" is registered as
// a native app with a loopback redirect, so any Gatehouse port matches (RFC 8252 §7.3).
// --no-userinfo turns the userinfo endpoint off, so the email must come from the id_token.
// Each account has a `groups` claim read from its address: "carol+ops@example.com" is in "ops".
//
// --connections makes it a full OAuth authorization server for Gatehouse's OAuth client engine
// ("connections"); without the flag nothing below applies. It adds:
// - clients "gatehouse-connections" (client_secret_post) and "gatehouse-connections-basic"
//   (client_secret_basic), secret "gatehouse-connections-secret" for both, native with the
//   loopback redirect http://127.0.0.1/connections/oauth/callback (any port), grants
//   authorization_code, refresh_token and client_credentials. Unlike plain oidc-provider, a
//   client must authenticate with its own method: the other one is 401 invalid_client.
// - a resource server for every URL under `${issuer}/`, the default being `${issuer}/api`: its
//   access tokens have aud = the resource, scopes among "read write", the format of
//   --access-token-format (default opaque; jwt is RS256 at+jwt, keys at /jwks) and the lifetime
//   of --access-token-ttl (default 3600). A token carries only the scopes asked for, so ask
//   for "read write" (client_credentials without `scope` gets a token with no scope). With
//   openid in the request an id_token comes too, but the access token is still the API's.
// - a refresh token on every authorization_code grant (no offline_access needed, which
//   oidc-provider drops anyway unless prompt=consent), rotated on each use. Replaying a rotated
//   one is 400 {"error":"invalid_grant","error_description":"grant request is invalid"} (the same
//   body as for an unknown or revoked one) and revokes the whole grant. On refresh `resource`
//   may be left out; if sent it must be the granted one (else 400 invalid_target), and `scope`
//   may only narrow (else 400 invalid_scope).
// - client credentials, revocation (RFC 7009, /token/revocation), introspection (RFC 7662,
//   /token/introspection; any authenticated client may introspect any token), and open dynamic
//   registration (RFC 7591, /reg) with management (RFC 7592: GET/PUT/DELETE on
//   registration_client_uri with the registration_access_token as Bearer). PUT replaces the
//   whole metadata: its body must carry client_id, may carry client_secret (unchanged), and
//   must not carry registration_access_token, registration_client_uri,
//   client_secret_expires_at or client_id_issued_at. PUT answers with a new
//   registration_access_token; the old one is then 401 invalid_token. A registration's
//   `scope`, if any, must be made of openid offline_access read write and then limits what the
//   client may ask for.
// - --cimd: client ID metadata documents (oidc-provider's `clientIdMetadataDocument`, draft-02):
//   an https client_id is fetched and used as the client, registration untouched. Its fetches
//   may reach loopback (oidc-provider refuses special-use addresses by default); the documents'
//   https is trusted as node trusts it (NODE_EXTRA_CA_CERTS for a throwaway CA).
// - GET /__stats: {"grants": {"authorization_code": n, "refresh_token": n,
//   "client_credentials": n}, "grant_errors": {"invalid_grant": n, <other token endpoint error
//   codes as they occur>: n}, "revocations": <revocation requests answered 200>, "registrations": <clients registered
//   at /reg>, "registrations_deleted": <RFC 7592 deletions>};
//   POST /__stats/reset zeroes them and answers the zeroed JSON.
// - POST /__expire-access-token with a form body `token=...`: that access token stops being
//   valid (as at the end of its lifetime) while its grant and refresh token live on. RFC 7009
//   revocation cannot do this here: oidc-provider revokes every token of the grant with it.
// Found out about oidc-provider 9.13:
// - A registered client with an http://127.0.0.1:PORT redirect URI is accepted as application
//   type "web" (the RFC 7591 default; the redirect must then match exactly, port included) as
//   well as "native" (any port matches).
// - JWT access tokens can be neither introspected nor revoked: both endpoints answer 400
//   {"error":"unsupported_token_type"}. Opaque ones can.
// - Revoking an access token also revokes the refresh tokens of its grant (RFC 7009 allows it);
//   revoking a refresh token revokes the grant's access tokens. Introspection of either then
//   says {"active":false}.
// - The login client "gatehouse-test" gets no default resource, refresh tokens only with
//   offline_access and lenient client authentication, as without the flag; its refresh tokens
//   do rotate, though.
// - /.well-known/oauth-authorization-server (RFC 8414) is served by oidc-provider itself, with
//   the same JSON as /.well-known/openid-configuration, flag or not.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

const port = Number(option('--port', process.env.OIDC_PORT ?? '0'));
const noUserinfo = flag('--no-userinfo');
const connections = flag('--connections');
const accessTokenFormat = option('--access-token-format', 'opaque');
// With --connections: resources (RFC 8707) other than the issuer's own that tokens may be
// for, e.g. an MCP server elsewhere whose authorization server this is.
const resourcePrefix = option('--resource-prefix', '');
const cimd = flag('--cimd');
const tlsCert = option('--tls-cert', '');
const tlsKey = option('--tls-key', '');
const accessTokenTTL = Number(option('--access-token-ttl', '3600'));
if (!['jwt', 'opaque'].includes(accessTokenFormat)) throw new Error('--access-token-format is jwt or opaque');
if (!Number.isSafeInteger(accessTokenTTL) || accessTokenTTL <= 0) throw new Error('--access-token-ttl is a positive integer');

const LOGIN_CLIENT = 'gatehouse-test';

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

const server = tlsCert
  ? https.createServer({ cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) })
  : http.createServer();
server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `${tlsCert ? 'https' : 'http'}://127.0.0.1:${actualPort}`;

  const configuration = {
    clients: [
      {
        client_id: LOGIN_CLIENT,
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
          // Groups from the address: "carol+ops+dev@example.com" is in "ops" and "dev".
          const groups = sub.split('@')[0].split('+').slice(1);
          return { sub, email: sub, email_verified: true, groups };
        },
      };
    },
    claims: { openid: ['sub', 'groups'], email: ['email', 'email_verified'] },
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
  };
  const stats = connections ? withConnections(configuration, issuer) : undefined;

  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));
  if (stats) stats.attach(provider);

  const oidc = provider.callback();
  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/favicon.ico') {
      // Browsers ask for it; a 404 would show up as a console error in the tests.
      res.writeHead(204);
      return res.end();
    }
    if (stats && (url.pathname.startsWith('/__stats') || url.pathname === '/__expire-access-token')) return stats.serve(req, res, url);
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

// The --connections additions to the provider configuration. Returns what needs the provider
// itself (attach) and the /__stats handler (serve).
function withConnections(configuration, issuer) {
  const connectionClient = (client_id, token_endpoint_auth_method) => ({
    client_id,
    client_secret: 'gatehouse-connections-secret',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/connections/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method,
  });
  configuration.clients.push(
    connectionClient('gatehouse-connections', 'client_secret_post'),
    connectionClient('gatehouse-connections-basic', 'client_secret_basic'),
  );

  const defaultApi = `${issuer}/api`;
  const isLoginClient = (client) => client.clientId === LOGIN_CLIENT;

  // Refresh tokens are what the connection engine manages, so hand them out without making
  // every test ask for offline_access (which oidc-provider also drops unless prompt=consent).
  configuration.issueRefreshToken = async (ctx, client, source) =>
    client.grantTypeAllowed('refresh_token') && (!isLoginClient(client) || source.scopes.has('offline_access'));
  // Otherwise a refresh token dies with the test browser's session at this provider.
  configuration.expiresWithSession = async (ctx, source) =>
    isLoginClient(ctx.oidc.client) && !source.scopes.has('offline_access');
  configuration.rotateRefreshToken = true;
  // The metadata documents of tests live on loopback: fetch without the special-use guard.
  if (cimd) configuration.fetch = (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined });
  // Listed so that they are advertised and a registration may carry them in its `scope`.
  configuration.scopes = ['openid', 'offline_access', 'read', 'write'];

  Object.assign(configuration.features, {
    clientCredentials: { enabled: true },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    clientIdMetadataDocument: { enabled: cimd, ack: 'draft-02' },
    // Any authenticated client may ask: this stands in for resource servers too.
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: {
      enabled: true,
      // oidc-provider's default policy, set explicitly to keep its start-up warning quiet.
      allowedPolicy: async (ctx, client, token) => {
        if (token.clientId === client.clientId) return true;
        if (client.clientAuthMethod === 'none') return false;
        throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
      },
    },
    resourceIndicators: {
      enabled: true,
      // No resource asked for: connection clients get the API, the login client plain OIDC.
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return oneOf;
        return isLoginClient(client) ? undefined : defaultApi;
      },
      // Code and refresh token exchanges without `resource` reuse the granted one, even when
      // openid was asked for (oidc-provider would otherwise issue a userinfo token).
      useGrantedResource: async (ctx) => !isLoginClient(ctx.oidc.client),
      async getResourceServerInfo(ctx, resourceIndicator) {
        const allowed =
          resourceIndicator.startsWith(`${issuer}/`) ||
          (resourcePrefix !== '' && resourceIndicator.startsWith(resourcePrefix));
        if (!allowed) throw new errors.InvalidTarget();
        return {
          scope: 'read write',
          audience: resourceIndicator,
          accessTokenFormat,
          accessTokenTTL,
        };
      },
    },
  });

  const counts = {};
  const reset = () =>
    Object.assign(counts, {
      grants: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
      grant_errors: { invalid_grant: 0 },
      revocations: 0,
      registrations: 0,
      registrations_deleted: 0,
    });
  reset();
  let attached;

  return {
    attach(provider) {
      attached = provider;
      // oidc-provider takes client_secret_basic and client_secret_post as interchangeable; be
      // strict so that a test notices when Gatehouse authenticates the wrong way. The login
      // client stays lenient, as without --connections.
      const compare = provider.Client.prototype.compareClientSecret;
      provider.Client.prototype.compareClientSecret = function (secret) {
        const usedBasic = Provider.ctx?.headers.authorization !== undefined;
        if (!isLoginClient(this) && usedBasic !== (this.clientAuthMethod === 'client_secret_basic')) return false;
        return compare.call(this, secret);
      };
      provider.on('grant.success', (ctx) => {
        const type = ctx.oidc.params.grant_type;
        counts.grants[type] = (counts.grants[type] ?? 0) + 1;
      });
      provider.on('registration_create.success', () => {
        counts.registrations += 1;
      });
      provider.on('registration_delete.success', () => {
        counts.registrations_deleted += 1;
      });
      provider.on('grant.error', (ctx, err) => {
        const code = err.error ?? 'server_error';
        counts.grant_errors[code] = (counts.grant_errors[code] ?? 0) + 1;
      });
      // No event marks a finished revocation request (grant.revoked is per grant and also fires
      // on refresh token reuse), so count the endpoint's 200 answers.
      provider.use(async (ctx, next) => {
        await next();
        if (ctx.oidc?.route === 'revocation' && ctx.status === 200) counts.revocations += 1;
      });
    },
    serve(req, res, url) {
      if (req.method === 'GET' && url.pathname === '/__stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(counts));
      }
      if (req.method === 'POST' && url.pathname === '/__expire-access-token') {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', async () => {
          const value = new URLSearchParams(body).get('token') ?? '';
          const token = await attached.AccessToken.find(value);
          if (token) await token.destroy();
          res.writeHead(token ? 204 : 404);
          res.end();
        });
        return undefined;
      }
      if (req.method === 'POST' && url.pathname === '/__stats/reset') {
        reset();
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(counts));
      }
      res.writeHead(404);
      res.end();
    },
  };
}

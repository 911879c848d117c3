// Where the servers of the browser tests listen. Override the base port with E2E_BASE_PORT
// when these are taken.
const base = Number(process.env.E2E_BASE_PORT ?? 4400);

export const ports = {
  none: base + 1,
  basic: base + 2,
  oauth2: base + 3,
  oidc: base + 10,
  upstream: base + 11,
  hosted: base + 12,
};

export const urls = {
  none: `http://127.0.0.1:${ports.none}`,
  basic: `http://127.0.0.1:${ports.basic}`,
  oauth2: `http://127.0.0.1:${ports.oauth2}`,
  oidc: `http://127.0.0.1:${ports.oidc}`,
  upstream: `http://127.0.0.1:${ports.upstream}`,
  hosted: `http://127.0.0.1:${ports.hosted}`,
};

export const basicCredentials = { username: 'admin', password: 'e2e password' };

// A Sigstore instance on loopback for the tests: @sigstore/mock's Fulcio and Rekor behind one HTTP server, and a
// GitHub Actions OIDC token endpoint whose tokens that Fulcio checks. Usage: node sigstore_loopback.mjs DIR CLAIMS.json
// Writes DIR/client_trust_config.json and DIR/ready.json ({url, token_url, request_token}), then serves until killed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import mock from '@sigstore/mock';

const [dir, claimsFile] = process.argv.slice(2);
const claims = JSON.parse(fs.readFileSync(claimsFile, 'utf8'));
const ISSUER = 'https://token.actions.githubusercontent.com';
const requestToken = crypto.randomBytes(16).toString('hex');
const oidcKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const b64url = (buf) => Buffer.from(buf).toString('base64url');

function issueToken(audience) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'loopback' }));
  const body = b64url(JSON.stringify({ ...claims, iss: ISSUER, aud: audience, iat: now, nbf: now - 5, exp: now + 300 }));
  const sig = crypto.sign('sha256', Buffer.from(`${header}.${body}`), { key: oidcKey.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${body}.${b64url(sig)}`;
}

// The claims of a token this OIDC endpoint signed, or an error: Fulcio trusts no other issuer.
function verifiedClaims(token) {
  const [header, body, sig] = token.split('.');
  const ok = crypto.verify('sha256', Buffer.from(`${header}.${body}`),
    { key: oidcKey.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig || '', 'base64url'));
  if (!ok) throw new Error('token not signed by the loopback OIDC issuer');
  const parsed = JSON.parse(Buffer.from(body, 'base64url'));
  if (parsed.aud !== 'sigstore' || parsed.exp < Date.now() / 1000) throw new Error('token audience or expiry wrong');
  return parsed;
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const fulcioKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ctlog = await mock.initializeCTLog(fulcioKeys);
const ca = await mock.initializeCA(fulcioKeys, ctlog);
// Fulcio names a GitHub workflow by the URI of its job_workflow_ref; the mock takes the SAN from one claim.
const fulcio = mock.fulcioHandler(ca, { subjectClaim: 'fulcio_san' });
const rekorKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const url = new URL(req.url, 'http://loopback');
  const reply = (status, body, type = 'application/json') => {
    res.writeHead(status, { 'Content-Type': type });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  try {
    if (req.method === 'GET' && url.pathname === '/oidc/token') {
      if (req.headers.authorization?.toLowerCase() !== `bearer ${requestToken}`) return reply(401, { message: 'bad request token' });
      return reply(200, { value: issueToken(url.searchParams.get('audience') || 'sigstore') });
    }
    if (req.method === 'POST' && url.pathname === fulcio.path) {
      // Shims: sigstore-python sends the token in the Authorization header and the CSR as base64 of its PEM.
      const bearer = (req.headers.authorization || '').replace(/^Bearer /i, '');
      const claimed = verifiedClaims(bearer);
      const unsigned = [b64url('{"alg":"none"}'),
        b64url(JSON.stringify({ ...claimed, fulcio_san: `https://github.com/${claimed.job_workflow_ref}` })), ''].join('.');
      const body = JSON.parse(Buffer.concat(chunks));
      const csr = Buffer.from(body.certificateSigningRequest, 'base64').toString();
      const out = await fulcio.fn(JSON.stringify({ credentials: { oidcIdentityToken: unsigned }, certificateSigningRequest: csr }));
      return reply(out.statusCode, out.response, out.contentType);
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/log/entries') {
      const entry = JSON.parse(Buffer.concat(chunks));
      if (entry.kind === 'dsse') {
        // Shim: Rekor stores a DSSE entry as the hashes of envelope and payload, with the signatures.
        const { envelope, verifiers } = entry.spec.proposedContent;
        const env = JSON.parse(envelope);
        entry.spec = {
          envelopeHash: { algorithm: 'sha256', value: sha256(envelope) },
          payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(env.payload, 'base64')) },
          signatures: env.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
        };
      }
      const tlog = await rekorLog;
      return reply(201, await tlog.log(entry));
    }
    return reply(404, { message: `no route ${req.method} ${url.pathname}` });
  } catch (err) {
    return reply(400, { message: String(err.message || err) });
  }
});

await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const rekorLog = mock.initializeTLog(base, rekorKeys);
const tlog = await rekorLog;

const start = new Date(Date.now() - 3600_000).toISOString();
const der = (key) => key.export({ format: 'der', type: 'spki' }).toString('base64');
const trustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [{
    baseUrl: base, hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: Buffer.from(tlog.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: crypto.createHash('sha256').update(tlog.publicKey).digest('base64') },
  }],
  certificateAuthorities: [{
    subject: { organization: 'sigstore.mock', commonName: 'sigstore' }, uri: base,
    certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] }, validFor: { start },
  }],
  ctlogs: [{
    baseUrl: base, hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: der(fulcioKeys.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: Buffer.from(ctlog.logID).toString('base64') },
  }],
  timestampAuthorities: [],
};
const service = { url: base, majorApiVersion: 1, validFor: { start }, operator: 'loopback' };
const trustConfig = {
  mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
  trustedRoot,
  signingConfig: {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [service], oidcUrls: [], rekorTlogUrls: [service], tsaUrls: [],
    rekorTlogConfig: { selector: 'ANY' }, tsaConfig: { selector: 'ANY' },
  },
};
fs.writeFileSync(path.join(dir, 'client_trust_config.json'), JSON.stringify(trustConfig, null, 2));
fs.writeFileSync(path.join(dir, 'ready.json'),
  JSON.stringify({ url: base, token_url: `${base}/oidc/token`, request_token: requestToken }));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));

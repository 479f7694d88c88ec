// Attaches a Sigstore bundle to an image with @sigstore/oci, the way actions/attest does. Reads one JSON object on
// stdin: {image, digest, bundle (a path), predicateType, username, password}; prints the artifact descriptor.
import fs from 'node:fs';
import { attachArtifactToImage } from '@sigstore/oci';

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const descriptor = await attachArtifactToImage({
  imageName: input.image,
  imageDigest: input.digest,
  artifact: fs.readFileSync(input.bundle),
  mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': input.predicateType },
  credentials: { username: input.username, password: input.password },
});
process.stdout.write(`${JSON.stringify(descriptor)}\n`);

// SPDX-License-Identifier: Apache-2.0
// Certificates for the TLS tests, made at test time with the openssl CLI
// (the Debian package) in a fresh temp dir: a private CA; a server
// certificate for 127.0.0.1 and localhost signed by it; a client certificate
// signed by it; a client certificate of ANOTHER CA (mutual TLS must refuse
// it); and, for the reload test, a second server certificate (new serial,
// same CA). Keys are EC P-256 (fast to make). Nothing is reused between runs.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from './harness.mjs';

function openssl(dir, args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function key(dir, name) {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
}

function ca(dir, name) {
  key(dir, name);
  openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-out', `${name}.crt`]);
}

// A leaf signed by caName; ext: extra extension lines (SAN, EKU).
function leaf(dir, name, caName, cn, ext) {
  key(dir, name);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext.join('\n') + '\n');
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`,
    '-CAcreateserial', '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
}

const SERVER_EXT = ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'];
const CLIENT_EXT = ['extendedKeyUsage=clientAuth'];

// Makes the set; returns paths and the PEM contents (buffers) clients need.
export function makeCerts(label = 'tls') {
  const dir = makeTempDir(label);
  ca(dir, 'ca');
  ca(dir, 'other-ca');
  leaf(dir, 'server', 'ca', 'kansatsu-test-server', SERVER_EXT);
  leaf(dir, 'server2', 'ca', 'kansatsu-test-server-2', SERVER_EXT);
  leaf(dir, 'client', 'ca', 'kansatsu-test-client', CLIENT_EXT);
  leaf(dir, 'intruder', 'other-ca', 'kansatsu-test-intruder', CLIENT_EXT);
  const p = (f) => join(dir, f);
  const certs = {
    dir,
    ca: p('ca.crt'), serverCert: p('served.crt'), serverKey: p('served.key'),
    read: (f) => readFileSync(p(f)),
    serial: (f) => openssl(dir, ['x509', '-in', f, '-noout', '-serial']).trim().replace(/^serial=/, '').toLowerCase(),
    // what the server is configured with: served.crt/key start as server.*
    serve: (name) => { copyFileSync(p(`${name}.crt`), p('served.crt.tmp')); copyFileSync(p(`${name}.key`), p('served.key.tmp'));
      // rename is atomic: the server never reads half a file
      spawnSync('mv', ['-f', p('served.key.tmp'), p('served.key')]); spawnSync('mv', ['-f', p('served.crt.tmp'), p('served.crt')]); },
  };
  certs.serve('server');
  return certs;
}

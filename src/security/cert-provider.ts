// Certificate files that are reloaded without a restart. A grpc-js
// CertificateProvider (the experimental interface its certificate-provider
// credentials watch): the server swaps its TLS context when we publish
// (Http2SecureServer.setSecureContext), and every new outgoing connection
// uses the latest files. Connections already open keep the certificate they
// were made with until they close.
//
// Why not grpc-js's FileWatcherCertificateProvider: it re-reads the files on a
// timer and publishes whatever it read, so a rotation caught half-way (the
// new certificate, the old key) made the server drop every new connection
// until the next read. Here a change of any file's mtime or size leads to one
// read of all of them; the set is published only if it parses and the key
// matches the certificate, else the last good set stays and one warning says
// why. The first load is synchronous and throws: a replica with unreadable
// certificates does not start.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from '../util/log.js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface CertFiles {
  /** PEM CA bundle that peers' certificates must chain to. */
  readonly ca: string;
  /** PEM certificate (chain) and key presented to peers; both or neither. */
  readonly cert?: string;
  readonly key?: string;
}

export interface LoadedCerts {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** The leaf certificate, parsed (when cert is set). */
  readonly leaf?: X509Certificate;
}

export class CertFileError extends Error {
  override name = 'CertFileError';
}

/** Read and check a set of files: PEM that parses, and a key that belongs to the certificate. */
export function loadCertFiles(files: CertFiles): LoadedCerts {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CertFileError(`cannot read the ${what} file ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = read('CA', files.ca);
  try {
    new X509Certificate(ca);
  } catch (err) {
    throw new CertFileError(`the CA file ${files.ca} holds no PEM certificate: ${(err as Error).message}`);
  }
  if ((files.cert === undefined) !== (files.key === undefined))
    throw new CertFileError('a certificate needs its key and a key its certificate: give both or neither');
  if (files.cert === undefined || files.key === undefined) return { ca };
  const cert = read('certificate', files.cert);
  const key = read('key', files.key);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new CertFileError(`the certificate file ${files.cert} holds no PEM certificate: ${(err as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new CertFileError(`the key file ${files.key} holds no usable private key: ${(err as Error).message}`);
  }
  if (!matches) throw new CertFileError(`the key in ${files.key} does not belong to the certificate in ${files.cert}`);
  return { ca, cert, key, leaf };
}

export interface ReloadOptions {
  /** How often the files' mtimes are checked (ms); default 5000. */
  readonly intervalMs?: number;
  readonly log?: Logger;
}

export class ReloadingCertificateProvider implements CertificateProvider {
  private current: LoadedCerts;
  /** mtime and size of each file, as last loaded. */
  private stamp: string;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** The last rejected stamp: a bad set is warned about once, not at every check. */
  private rejected = '';
  /** Sets published since start (the first load counts). */
  reloads = 1;

  constructor(
    readonly files: CertFiles,
    private readonly o: ReloadOptions = {},
  ) {
    this.current = loadCertFiles(files);
    this.stamp = this.stampSync();
    const every = o.intervalMs ?? 5000;
    if (every > 0) {
      this.timer = setInterval(() => void this.check(), every);
      this.timer.unref();
    }
  }

  /** The set in use now. */
  get certs(): LoadedCerts {
    return this.current;
  }

  /**
   * Look at the files now; reload and publish when any changed and the new
   * set is good. Resolves true when a new set was published.
   */
  async check(): Promise<boolean> {
    if (this.checking) return false;
    this.checking = true;
    try {
      const stamp = await this.stampAsync();
      if (stamp === this.stamp || stamp === this.rejected) return false;
      let next: LoadedCerts;
      try {
        next = loadCertFiles(this.files);
      } catch (err) {
        this.rejected = stamp;
        this.o.log?.warn(
          { err: (err as Error).message },
          'certificate files changed but are not usable; keeping the previous ones',
        );
        return false;
      }
      this.current = next;
      this.stamp = stamp;
      this.rejected = '';
      this.reloads++;
      this.o.log?.info(
        { files: this.files, subject: next.leaf?.subject, validTo: next.leaf?.validTo },
        'certificates reloaded',
      );
      this.publish();
      return true;
    } catch (err) {
      // A file missing mid-rotation: keep what we have, look again next time.
      this.o.log?.debug({ err: (err as Error).message }, 'certificate files not readable right now');
      return false;
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(listener, { caCertificate: this.current.ca });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.idListeners.add(listener);
    const { cert, key } = this.current;
    process.nextTick(listener, cert && key ? { certificate: cert, privateKey: key } : null);
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.idListeners.delete(listener);
  }

  private publish(): void {
    const { ca, cert, key } = this.current;
    for (const l of this.idListeners) l(cert && key ? { certificate: cert, privateKey: key } : null);
    for (const l of this.caListeners) l({ caCertificate: ca });
  }

  private paths(): string[] {
    return [this.files.ca, this.files.cert, this.files.key].filter((f): f is string => f !== undefined);
  }

  private stampSync(): string {
    return this.paths()
      .map((f) => {
        const s = statSync(f);
        return `${s.mtimeMs}:${s.size}`;
      })
      .join('|');
  }

  private async stampAsync(): Promise<string> {
    const parts = await Promise.all(this.paths().map((f) => stat(f)));
    return parts.map((s) => `${s.mtimeMs}:${s.size}`).join('|');
  }
}

// Cell paths and the names derived from them. A cell is named by its path
// ("/", "/eu", "/eu/west-1a", ...); its depth is its tier. The same path also
// names containers, Services and StatefulSets, hence the DNS-safe slug.

/** A path segment: lowercase DNS-label characters, since it names containers and StatefulSets. */
export const SEGMENT_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/** "/" + segments; the root is "/". */
export function joinPath(parent: string, segment: string): string {
  return parent === '/' ? `/${segment}` : `${parent}/${segment}`;
}

/** The parent's path: "/eu/west-1a" → "/eu", "/eu" → "/"; '' for the root. */
export function parentOf(path: string): string {
  if (path === '/') return '';
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function depthOf(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

/** A name safe for DNS, containers and StatefulSets: "/" → "root", "/eu/west-1a" → "eu-west-1a". */
export function cellSlug(path: string): string {
  return path === '/' ? 'root' : path.slice(1).replaceAll('/', '-');
}

/** Split "host:port" ("[::1]:7000" too); undefined if malformed. */
export function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  return { host: m[1]!, port: Number(m[2]) };
}

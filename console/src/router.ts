// Client-side routes under /console/ (the server answers every such path with index.html).
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/console';

function current(): string {
  const p = location.pathname;
  return p.startsWith(BASE + '/') ? p.slice(BASE.length) : '/';
}

export function navigate(to: string) {
  history.pushState(null, '', BASE + to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function usePath(): string {
  const [path, setPath] = useState(current());
  useEffect(() => {
    const f = () => setPath(current());
    addEventListener('popstate', f);
    return () => removeEventListener('popstate', f);
  }, []);
  return path;
}

// "/collections/users/indexes" against "/collections/:name/:tab?" → {name: "users", tab: "indexes"}.
export function match(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/').filter(Boolean);
  const xs = path.split('/').filter(Boolean);
  const out: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    const optional = ps[i].endsWith('?');
    const p = optional ? ps[i].slice(0, -1) : ps[i];
    if (i >= xs.length) {
      if (optional) continue;
      return null;
    }
    if (p.startsWith(':')) {
      try {
        out[p.slice(1)] = decodeURIComponent(xs[i]);
      } catch {
        return null;
      }
    } else if (p !== xs[i]) return null;
  }
  return xs.length <= ps.length ? out : null;
}

// The console's shell: the login with an API key, the header, and the pages by route.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, setKey, storedKey, whenUnauthenticated, ApiError } from './api';
import { match, usePath } from './router';
import { ErrorBox, Field, Link } from './ui';
import { CollectionsPage } from './pages/collections';
import { CollectionPage } from './pages/collection';
import { VectorPage } from './pages/vectors';
import { ServerPage } from './pages/server';
import './style.css';

export interface Session {
  readOnly: boolean;
}

async function login(key: string): Promise<Session> {
  setKey(key);
  try {
    const info = await call<{ read_only: boolean }>('GET', '/admin/key');
    return { readOnly: info.read_only };
  } catch (e) {
    setKey(null);
    throw e;
  }
}

function Login(props: { onLogin: (s: Session) => void; notice: string | null }) {
  const [key, setK] = useState('');
  const [error, setError] = useState<string | null>(props.notice);
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <h1>NexaDB console</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            props.onLogin(await login(key.trim()));
          } catch (err) {
            const msg = (err as Error).message;
            setError(err instanceof ApiError && err.status === 401 ? `That key was refused: ${msg}` : msg);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          Enter an API key of this server (the one it printed at its first start is in <code>&lt;data-dir&gt;/api_key</code>
          ). It is kept in this tab only.
        </p>
        <Field label="API key" name="api-key" type="password" value={key} onInput={setK} autoFocus />
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Log in
        </button>
      </form>
    </main>
  );
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const [notice, setNotice] = useState<string | null>(null);
  const path = usePath();

  useEffect(() => {
    whenUnauthenticated(() => {
      setKey(null);
      setSession(null);
      setNotice('The server no longer accepts this key: log in again.');
    });
    const k = storedKey();
    if (k !== null)
      login(k)
        .then(setSession)
        .catch(() => setKey(null))
        .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="loading">Loading…</p>;
  if (session === null) return <Login onLogin={setSession} notice={notice} />;

  let page;
  let m;
  if ((m = match('/collections/:name/:tab?', path))) page = <CollectionPage session={session} name={m.name} tab={m.tab ?? 'documents'} />;
  else if ((m = match('/vectors/:name', path))) page = <VectorPage session={session} name={m.name} />;
  else if (match('/server', path)) page = <ServerPage />;
  else page = <CollectionsPage session={session} />;
  const section = path.startsWith('/server') ? 'server' : 'collections';

  return (
    <>
      <header>
        <Link to="/" class="brand">
          NexaDB
        </Link>
        <nav aria-label="Sections">
          <Link to="/" aria-current={section === 'collections' ? 'page' : undefined}>
            Collections
          </Link>
          <Link to="/server" aria-current={section === 'server' ? 'page' : undefined}>
            Server
          </Link>
        </nav>
        <span class="spacer" />
        {session.readOnly ? (
          <span class="badge" title="This key may read but not write">
            read-only
          </span>
        ) : null}
        <button
          type="button"
          class="plain"
          onClick={() => {
            setKey(null);
            setNotice(null);
            setSession(null);
          }}
        >
          Log out
        </button>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);

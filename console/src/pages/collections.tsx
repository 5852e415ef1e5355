// Every collection of both kinds, with counts and sizes; create and drop.
import { useEffect, useState } from 'preact/hooks';
import { bytes, call, enc, type CollectionInfo } from '../api';
import type { Session } from '../main';
import { ConfirmByName, ErrorBox, Field, Link, Modal, ReadOnlyNote } from '../ui';
import { navigate } from '../router';

async function listAll(): Promise<CollectionInfo[]> {
  const [docs, vecs] = await Promise.all([
    call<{ collections: CollectionInfo[] }>('GET', '/collections'),
    call<{ collections: CollectionInfo[] }>('GET', '/vector'),
  ]);
  const all = [
    ...docs.collections.map((c) => ({ ...c, kind: 'documents' as const })),
    ...vecs.collections.map((c) => ({ ...c, kind: 'vectors' as const })),
  ];
  return all.sort((a, b) => a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind));
}

export function href(c: { name: string; kind: string }): string {
  return (c.kind === 'vectors' ? '/vectors/' : '/collections/') + enc(c.name);
}

function CreateDialog(props: { onClose: () => void; onCreated: (c: CollectionInfo) => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'documents' | 'vectors'>('documents');
  const [dims, setDims] = useState('384');
  const [metric, setMetric] = useState('cosine');
  const [index, setIndex] = useState('exact');
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title="New collection" onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            if (kind === 'documents') {
              await call('POST', '/collections', { collection: name });
            } else {
              await call('POST', `/vector/${enc(name)}`, {
                dimensions: Number(dims),
                metric,
                index: { kind: index },
              });
            }
            props.onCreated({ name, kind, count: 0, size_bytes: 0 });
          } catch (err) {
            setError((err as Error).message);
          }
        }}
      >
        <Field label="Name" name="collection-name" value={name} onInput={setName} autoFocus placeholder="A-Z a-z 0-9 _ . -" />
        <fieldset>
          <legend>Kind</legend>
          <label>
            <input type="radio" name="kind" checked={kind === 'documents'} onChange={() => setKind('documents')} /> Documents
          </label>
          <label>
            <input type="radio" name="kind" checked={kind === 'vectors'} onChange={() => setKind('vectors')} /> Vectors
          </label>
        </fieldset>
        {kind === 'vectors' ? (
          <div class="row">
            <Field label="Dimensions" name="dimensions" type="number" value={dims} onInput={setDims} />
            <div class="field">
              <label for="metric">Metric</label>
              <select id="metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
                <option value="cosine">cosine</option>
                <option value="dot">dot</option>
                <option value="l2">l2</option>
              </select>
            </div>
            <div class="field">
              <label for="vindex">Index</label>
              <select id="vindex" value={index} onChange={(e) => setIndex(e.currentTarget.value)}>
                <option value="exact">exact</option>
                <option value="hnsw">HNSW</option>
              </select>
            </div>
          </div>
        ) : null}
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" disabled={name === ''}>
            Create
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function CollectionsPage({ session }: { session: Session }) {
  const [list, setList] = useState<CollectionInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [dropping, setDropping] = useState<CollectionInfo | null>(null);
  const load = () =>
    listAll()
      .then((l) => {
        setList(l);
        setError(null);
      })
      .catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);

  return (
    <section aria-labelledby="h-collections">
      <div class="title-row">
        <h1 id="h-collections">Collections</h1>
        <span class="spacer" />
        <button type="button" onClick={load}>
          Refresh
        </button>
        {session.readOnly ? null : (
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New collection
          </button>
        )}
      </div>
      <ReadOnlyNote readOnly={session.readOnly} />
      <ErrorBox error={error} />
      {list === null ? (
        <p class="loading">Loading…</p>
      ) : list.length === 0 ? (
        <p>No collections yet.</p>
      ) : (
        <div class="scroll">
          <table class="grid" aria-label="Collections">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Documents
                </th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Vectors</th>
                {session.readOnly ? null : <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <tr key={c.kind + c.name} data-collection={c.name} data-kind={c.kind}>
                  <td>
                    <Link to={href(c)}>{c.name}</Link>
                  </td>
                  <td>
                    <span class={'kind ' + c.kind}>{c.kind === 'vectors' ? 'vectors' : 'documents'}</span>
                  </td>
                  <td class="num">{c.count ?? 0}</td>
                  <td class="num">{bytes(c.size_bytes)}</td>
                  <td>{c.kind === 'vectors' ? `${c.dimensions} dims, ${c.metric}, ${c.index?.kind ?? 'exact'}` : ''}</td>
                  {session.readOnly ? null : (
                    <td>
                      <button type="button" class="danger small" onClick={() => setDropping(c)} aria-label={`Drop ${c.name}`}>
                        Drop
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating ? (
        <CreateDialog
          onClose={() => setCreating(false)}
          onCreated={(c) => {
            setCreating(false);
            navigate(href(c));
          }}
        />
      ) : null}
      {dropping ? (
        <ConfirmByName
          what="collection"
          name={dropping.name}
          onClose={() => setDropping(null)}
          onConfirm={async () => {
            await call('DELETE', (dropping.kind === 'vectors' ? '/vector/' : '/collections/') + enc(dropping.name));
            await load();
          }}
        />
      ) : null}
    </section>
  );
}

// A collection's indexes: list, create (one field or several, unique), drop; and the planner's
// explain of the query bar's query, to see whether an index serves it.
import { useEffect, useState } from 'preact/hooks';
import { call, enc, type IndexInfo } from '../api';
import type { Session } from '../main';
import { isObject, type Json } from '../mongo';
import { ConfirmByName, ErrorBox, Field, JsonView, ReadOnlyNote } from '../ui';
import { findRequest, placeError, QueryBar, type FieldErrors, type QueryText } from './collection';

interface KeyRow {
  field: string;
  direction: 'ascending' | 'descending';
}

export function IndexesPane(props: { session: Session; name: string; q: QueryText; setQ: (q: QueryText) => void; vectors?: boolean }) {
  const { session, name } = props;
  const base = `${props.vectors ? '/vector' : '/collections'}/${enc(name)}/indexes`;
  const [indexes, setIndexes] = useState<IndexInfo[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [keys, setKeys] = useState<KeyRow[]>([{ field: '', direction: 'ascending' }]);
  const [unique, setUnique] = useState(false);
  const [idxName, setIdxName] = useState('');
  const [createError, setCreateError] = useState<string | null>(null);
  const [dropping, setDropping] = useState<string | null>(null);
  const [explain, setExplain] = useState<Json | undefined>(undefined);
  const [qErrors, setQErrors] = useState<FieldErrors>({});

  const load = () =>
    call<{ indexes: IndexInfo[] }>('GET', base)
      .then((r) => {
        setIndexes(r.indexes);
        setError(null);
      })
      .catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, [name]);

  const runExplain = async () => {
    const { body, errors } = findRequest(props.q);
    setQErrors(errors);
    if (Object.keys(errors).length) return;
    body.explain = true;
    if (body.limit === undefined) body.limit = 20;
    try {
      const r = await call<{ explain?: Json }>('POST', `/collections/${enc(name)}/query`, body);
      setExplain(r.explain ?? null);
    } catch (e) {
      setQErrors(placeError(e));
      setExplain(undefined);
    }
  };

  return (
    <>
      <ErrorBox error={error} />
      {indexes === null ? (
        <p class="loading">Loading…</p>
      ) : (
        <div class="scroll">
          <table class="grid" aria-label="Indexes">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Keys</th>
                <th scope="col">Unique</th>
                <th scope="col">Multikey</th>
                <th scope="col">TTL</th>
                {session.readOnly ? null : <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {indexes.length === 0 ? (
                <tr>
                  <td colSpan={6}>No secondary indexes (documents are found by _id, or by scanning).</td>
                </tr>
              ) : null}
              {indexes.map((ix) => (
                <tr key={ix.name} data-index={ix.name}>
                  <td>{ix.name}</td>
                  <td>{ix.fields.map((f) => `${f.field} ${f.direction === 'descending' ? '↓' : '↑'}`).join(', ')}</td>
                  <td>{ix.unique ? 'yes' : ''}</td>
                  <td>{ix.multikey ? 'yes' : ''}</td>
                  <td>{ix.ttl?.expire_after_seconds ? `${ix.ttl.expire_after_seconds} s` : ''}</td>
                  {session.readOnly ? null : (
                    <td>
                      <button type="button" class="small danger" onClick={() => setDropping(ix.name)} aria-label={`Drop index ${ix.name}`}>
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
      <ReadOnlyNote readOnly={session.readOnly} />
      {session.readOnly ? null : (
        <form
          class="card"
          aria-label="New index"
          onSubmit={async (e) => {
            e.preventDefault();
            setCreateError(null);
            try {
              await call('POST', base, {
                fields: keys.filter((k) => k.field.trim() !== '').map((k) => ({ field: k.field.trim(), direction: k.direction })),
                unique,
                ...(idxName.trim() ? { name: idxName.trim() } : {}),
              });
              setKeys([{ field: '', direction: 'ascending' }]);
              setIdxName('');
              setUnique(false);
              await load();
            } catch (err) {
              setCreateError((err as Error).message);
            }
          }}
        >
          <h2>New index</h2>
          {keys.map((k, i) => (
            <div class="row" key={i}>
              <Field
                label={`Field ${i + 1}`}
                name={`index-field-${i}`}
                value={k.field}
                placeholder="address.city"
                onInput={(v) => setKeys(keys.map((x, j) => (j === i ? { ...x, field: v } : x)))}
              />
              <div class="field">
                <label for={`dir-${i}`}>Order</label>
                <select
                  id={`dir-${i}`}
                  value={k.direction}
                  onChange={(e) => setKeys(keys.map((x, j) => (j === i ? { ...x, direction: e.currentTarget.value as KeyRow['direction'] } : x)))}
                >
                  <option value="ascending">ascending</option>
                  <option value="descending">descending</option>
                </select>
              </div>
            </div>
          ))}
          <div class="row">
            <button type="button" class="small" onClick={() => setKeys([...keys, { field: '', direction: 'ascending' }])}>
              Add a field (compound)
            </button>
            <label class="check">
              <input type="checkbox" checked={unique} onChange={(e) => setUnique(e.currentTarget.checked)} /> Unique
            </label>
            <Field label="Name (optional)" name="index-name" value={idxName} onInput={setIdxName} />
          </div>
          <ErrorBox error={createError} />
          <div class="actions">
            <button type="submit" class="primary" disabled={!keys.some((k) => k.field.trim() !== '')}>
              Create index
            </button>
          </div>
        </form>
      )}
      {props.vectors ? null : (
        <section class="card" aria-labelledby="h-explain">
          <h2 id="h-explain">Explain the current query</h2>
          <QueryBar q={props.q} setQ={props.setQ} errors={qErrors} onRun={runExplain} label="Explain" />
          <ErrorBox error={qErrors.general} />
          {isObject(explain) ? (
            <p class="plan" role="status">
              {typeof explain.index === 'string' && explain.index ? (
                <>
                  Uses the index <strong>{explain.index}</strong>
                </>
              ) : (
                'Uses no index: every document is read'
              )}
              {typeof explain.plan === 'string' ? ` (${explain.plan})` : ''}.
            </p>
          ) : null}
          {explain !== undefined ? <JsonView value={explain} label="The planner's explain" /> : null}
        </section>
      )}
      {dropping ? (
        <ConfirmByName
          what="index"
          name={dropping}
          onClose={() => setDropping(null)}
          onConfirm={async () => {
            await call('DELETE', `${base}/${enc(dropping)}`);
            await load();
          }}
        />
      ) : null}
    </>
  );
}

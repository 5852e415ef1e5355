// One document collection: its documents (query bar, table or JSON, insert, edit, delete), the
// aggregation pipeline editor, and its indexes with the planner's explain of the current query.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, enc, type FindResult } from '../api';
import type { Session } from '../main';
import { cell, editUpdate, errorField, MANAGED, parseObject, ParseError, type JsonObject } from '../mongo';
import { CollectionTitle, ErrorBox, Field, JsonView, Modal, ReadOnlyNote, Tabs } from '../ui';
import { AggregatePane } from './aggregate';
import { IndexesPane } from './indexes';

// The query bar's text, kept while the user moves between the tabs.
export interface QueryText {
  filter: string;
  projection: string;
  sort: string;
  limit: string;
}
export type FieldErrors = Partial<Record<keyof QueryText | 'general', string>>;

// The Find request for the query bar's text; ParseError names the field it failed in.
export function findRequest(q: QueryText): { body: JsonObject; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const body: JsonObject = {};
  for (const f of ['filter', 'projection', 'sort'] as const) {
    try {
      const v = parseObject(q[f]);
      if (Object.keys(v).length) body[f === 'filter' ? 'query' : f] = v;
    } catch (e) {
      errors[f] = e instanceof ParseError ? e.message : String(e);
    }
  }
  const limit = q.limit.trim();
  if (limit !== '') {
    if (!/^\d+$/.test(limit)) errors.limit = 'a whole number of documents';
    else body.limit = Number(limit);
  }
  return { body, errors };
}

// A server error shown beside the field it names (or above the results).
export function placeError(e: unknown): FieldErrors {
  const msg = (e as Error).message;
  const f = e instanceof ApiError ? errorField(msg) : null;
  if (f && ['filter', 'projection', 'sort', 'limit'].includes(f.field)) return { [f.field]: msg };
  if (f && f.field === 'skip') return { limit: msg };
  return { general: msg };
}

function QueryBar(props: { q: QueryText; setQ: (q: QueryText) => void; errors: FieldErrors; onRun: () => void; label?: string }) {
  const { q, setQ, errors } = props;
  return (
    <form
      class="querybar"
      aria-label="Query"
      onSubmit={(e) => {
        e.preventDefault();
        props.onRun();
      }}
    >
      <Field class="grow" label="Filter" name="filter" value={q.filter} placeholder="{ age: { $gt: 25 } }" error={errors.filter} onInput={(v) => setQ({ ...q, filter: v })} />
      <Field label="Projection" name="projection" value={q.projection} placeholder="{ name: 1 }" error={errors.projection} onInput={(v) => setQ({ ...q, projection: v })} />
      <Field label="Sort" name="sort" value={q.sort} placeholder="{ age: -1 }" error={errors.sort} onInput={(v) => setQ({ ...q, sort: v })} />
      <Field class="narrow" label="Limit" name="limit" value={q.limit} placeholder="20" error={errors.limit} onInput={(v) => setQ({ ...q, limit: v })} />
      <button type="submit" class="primary">
        {props.label ?? 'Find'}
      </button>
    </form>
  );
}

function DocumentDialog(props: {
  title: string;
  initial: string;
  onSave: (doc: JsonObject) => Promise<void>;
  onClose: () => void;
}) {
  const [text, setText] = useState(props.initial);
  const [error, setError] = useState<string | null>(null);
  const save = async () => {
    setError(null);
    let doc: JsonObject;
    try {
      doc = parseObject(text);
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    try {
      await props.onSave(doc);
      props.onClose();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <Modal title={props.title} onClose={props.onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save();
        }}
      >
        <p class="hint">
          Relaxed Extended JSON or the shell's syntax: <code>{'{"at": {"$date": "2026-01-02T03:04:05Z"}}'}</code>,{' '}
          <code>ISODate("…")</code>, <code>NumberLong("…")</code>. Ctrl+Enter saves.
        </p>
        <Field label="Document" name="document" multiline rows={14} value={text} onInput={setText} error={error} autoFocus onSubmit={save} />
        <div class="actions">
          <button type="submit" class="primary">
            Save
          </button>
        </div>
      </form>
    </Modal>
  );
}

function DocumentsPane(props: { session: Session; name: string; q: QueryText; setQ: (q: QueryText) => void }) {
  const { session, name, q, setQ } = props;
  const [result, setResult] = useState<FindResult | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [view, setView] = useState<'table' | 'json'>('table');
  const [tokens, setTokens] = useState<string[]>([]); // page tokens of the pages before this one
  const [token, setToken] = useState('');
  const [inserting, setInserting] = useState(false);
  const [editing, setEditing] = useState<JsonObject | null>(null);
  const [deleting, setDeleting] = useState<JsonObject | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const run = async (pageToken = '', before: string[] = []) => {
    const { body, errors } = findRequest(q);
    setErrors(errors);
    if (Object.keys(errors).length) return;
    if (body.limit === undefined) body.limit = 20;
    if (pageToken) body.page_token = pageToken;
    try {
      setResult(await call<FindResult>('POST', `/collections/${enc(name)}/query`, body));
      setToken(pageToken);
      setTokens(before);
    } catch (e) {
      setErrors(placeError(e));
      setResult(null);
    }
  };
  useEffect(() => {
    run();
  }, [name]);

  const docs = result?.documents ?? [];
  const columns: string[] = [];
  for (const d of docs) for (const k of Object.keys(d)) if (!columns.includes(k) && columns.length < 12) columns.push(k);

  return (
    <>
      <QueryBar q={q} setQ={setQ} errors={errors} onRun={() => run()} />
      <ErrorBox error={errors.general} />
      <div class="title-row">
        <div role="group" aria-label="View" class="toggle">
          <button type="button" aria-pressed={view === 'table'} onClick={() => setView('table')}>
            Table
          </button>
          <button type="button" aria-pressed={view === 'json'} onClick={() => setView('json')}>
            JSON
          </button>
        </div>
        <span class="count" aria-live="polite">
          {result ? `${docs.length} document${docs.length === 1 ? '' : 's'}${tokens.length ? ` (page ${tokens.length + 1})` : ''}` : ''}
        </span>
        <span class="spacer" />
        <button type="button" disabled={tokens.length === 0} onClick={() => run(tokens[tokens.length - 1], tokens.slice(0, -1))}>
          Previous
        </button>
        <button
          type="button"
          disabled={!result?.next_page_token || docs.length === 0}
          onClick={() => run(result!.next_page_token!, [...tokens, token])}
        >
          Next
        </button>
        {session.readOnly ? null : (
          <button type="button" class="primary" onClick={() => setInserting(true)}>
            Insert document
          </button>
        )}
      </div>
      <ReadOnlyNote readOnly={session.readOnly} />
      {notice ? (
        <p class="note" role="status">
          {notice}
        </p>
      ) : null}
      {result === null ? null : view === 'json' ? (
        <JsonView value={docs} label="Documents as JSON" />
      ) : docs.length === 0 ? (
        <p>No documents match.</p>
      ) : (
        <div class="scroll">
          <table class="grid" aria-label="Documents">
            <thead>
              <tr>
                {columns.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
                {session.readOnly ? null : <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {docs.map((d) => (
                <tr key={String(d._id)} data-id={String(d._id)}>
                  {columns.map((c) => (
                    <td key={c} title={JSON.stringify(d[c])}>
                      {cell(d[c])}
                    </td>
                  ))}
                  {session.readOnly ? null : (
                    <td class="nowrap">
                      <button type="button" class="small" onClick={() => setEditing(d)} aria-label={`Edit ${d._id}`}>
                        Edit
                      </button>{' '}
                      <button type="button" class="small danger" onClick={() => setDeleting(d)} aria-label={`Delete ${d._id}`}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {inserting ? (
        <DocumentDialog
          title={`Insert into ${name}`}
          initial={'{\n  \n}'}
          onClose={() => setInserting(false)}
          onSave={async (doc) => {
            const r = await call<{ document_id: string }>('POST', `/collections/${enc(name)}`, doc);
            setNotice(`Inserted ${r.document_id}.`);
            await run(token, tokens);
          }}
        />
      ) : null}
      {editing ? (
        <DocumentDialog
          title={`Edit ${editing._id}`}
          initial={JSON.stringify(editing, null, 2)}
          onClose={() => setEditing(null)}
          onSave={async (doc) => {
            for (const k of MANAGED)
              if (k in doc && JSON.stringify(doc[k]) !== JSON.stringify(editing[k])) throw new Error(`${k} is set by the database and cannot be changed`);
            const update = editUpdate(editing, doc);
            if (update === null) {
              setNotice('Nothing changed.');
              return;
            }
            await call('PUT', `/collections/${enc(name)}/${enc(String(editing._id))}`, update);
            setNotice(`Updated ${editing._id}: ${Object.keys({ ...(update.$set as JsonObject), ...(update.$unset as JsonObject) }).join(', ')}.`);
            await run(token, tokens);
          }}
        />
      ) : null}
      {deleting ? (
        <Modal title={`Delete ${deleting._id}`} onClose={() => setDeleting(null)}>
          <p>Delete this document?</p>
          <JsonView value={deleting} />
          <div class="actions">
            <button
              type="button"
              class="danger"
              autoFocus
              onClick={async () => {
                try {
                  await call('DELETE', `/collections/${enc(name)}/${enc(String(deleting._id))}`);
                  setNotice(`Deleted ${deleting._id}.`);
                  setDeleting(null);
                  await run(token, tokens);
                } catch (e) {
                  setNotice((e as Error).message);
                  setDeleting(null);
                }
              }}
            >
              Delete
            </button>
          </div>
        </Modal>
      ) : null}
    </>
  );
}

export function CollectionPage(props: { session: Session; name: string; tab: string }) {
  const { session, name, tab } = props;
  const [q, setQ] = useState<QueryText>({ filter: '', projection: '', sort: '', limit: '20' });
  const base = `/collections/${enc(name)}`;
  return (
    <section aria-labelledby="h-collection">
      <CollectionTitle kind="documents" name={name} readOnly={session.readOnly} path={base} />
      <Tabs
        tabs={[
          { to: base, label: 'Documents', current: tab === 'documents' },
          { to: base + '/aggregate', label: 'Aggregation', current: tab === 'aggregate' },
          { to: base + '/indexes', label: 'Indexes', current: tab === 'indexes' },
        ]}
      />
      {tab === 'aggregate' ? (
        <AggregatePane name={name} />
      ) : tab === 'indexes' ? (
        <IndexesPane session={session} name={name} q={q} setQ={setQ} />
      ) : (
        <DocumentsPane session={session} name={name} q={q} setQ={setQ} />
      )}
    </section>
  );
}

export { QueryBar };

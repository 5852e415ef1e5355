// One vector collection: dimensions, metric and index; a search form (a pasted vector or a
// stored document's), k, filter and ef, with each hit's id, score and document.
import { useEffect, useState } from 'preact/hooks';
import { bytes, call, enc, type CollectionInfo, type SearchHit } from '../api';
import type { Session } from '../main';
import { errorField, parseMongo, parseObject, type JsonObject } from '../mongo';
import { CollectionTitle, ErrorBox, Field, JsonView } from '../ui';

// "[0.1, 0.2]" or "0.1, 0.2" or "0.1 0.2" → numbers; throws naming what is wrong.
export function parseVector(text: string): number[] {
  const t = text.trim();
  const v = t.startsWith('[') ? parseMongo(t) : t.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!Array.isArray(v) || v.length === 0) throw new Error('a vector is a list of numbers: [0.1, 0.2, …]');
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`component ${i} is not a number`);
  });
  return v as number[];
}

export function VectorPage({ session, name }: { session: Session; name: string }) {
  const [info, setInfo] = useState<CollectionInfo | null>(null);
  const [ids, setIds] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [vector, setVector] = useState('');
  const [pick, setPick] = useState('');
  const [k, setK] = useState('10');
  const [filter, setFilter] = useState('');
  const [ef, setEf] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [plan, setPlan] = useState<JsonObject | null>(null);

  useEffect(() => {
    call<{ collections: CollectionInfo[] }>('GET', '/vector')
      .then((r) => {
        const c = r.collections.find((x) => x.name === name);
        if (!c) setError(`There is no vector collection ${name}.`);
        setInfo(c ?? null);
      })
      .catch((e) => setError(e.message));
    call<{ documents: JsonObject[] }>('POST', `/vector/${enc(name)}/find`, { limit: 50 }) // the first 50 (each comes with its vector)
      .then((r) => setIds(r.documents.map((d) => String(d.document ? (d.document as JsonObject)._id : d._id))))
      .catch(() => setIds([]));
  }, [name]);

  const useStored = async () => {
    if (!pick) return;
    try {
      const r = await call<{ vector: number[] }>('GET', `/vector/${enc(name)}/${enc(pick)}?include_vector=true`);
      setVector(JSON.stringify(r.vector));
      setErrors({});
    } catch (e) {
      setErrors({ vector: (e as Error).message });
    }
  };

  const search = async () => {
    const errs: Record<string, string> = {};
    const body: JsonObject = { explain: true };
    try {
      body.vector = parseVector(vector);
    } catch (e) {
      errs.vector = (e as Error).message;
    }
    if (!/^\d+$/.test(k.trim()) || Number(k) < 1) errs.limit = 'k is a whole number of results, 1 or more';
    else body.limit = Number(k);
    try {
      const f = parseObject(filter);
      if (Object.keys(f).length) body.filter = f;
    } catch (e) {
      errs.filter = (e as Error).message;
    }
    if (ef.trim() !== '') {
      if (!/^\d+$/.test(ef.trim())) errs.ef = 'ef is a whole number';
      else body.ef = Number(ef);
    }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    try {
      const r = await call<{ results: SearchHit[]; plan?: JsonObject }>('POST', `/vector/${enc(name)}/search`, body);
      setHits(r.results);
      setPlan(r.plan ?? null);
    } catch (e) {
      const f = errorField((e as Error).message);
      const key = f && ['vector', 'filter', 'ef'].includes(f.field) ? f.field : f?.field === 'limit' ? 'limit' : 'general';
      setErrors({ [key]: (e as Error).message });
      setHits(null);
    }
  };

  return (
    <section aria-labelledby="h-collection">
      <CollectionTitle kind="vectors" name={name} readOnly={session.readOnly} path={`/vector/${enc(name)}`} />
      <ErrorBox error={error} />
      {info ? (
        <dl class="facts" aria-label="Collection">
          <dt>Vectors</dt>
          <dd>{info.count ?? 0}</dd>
          <dt>Dimensions</dt>
          <dd data-fact="dimensions">{info.dimensions}</dd>
          <dt>Metric</dt>
          <dd data-fact="metric">{info.metric}</dd>
          <dt>Index</dt>
          <dd data-fact="index">
            {info.index?.kind ?? 'exact'}
            {info.index?.kind === 'hnsw'
              ? ` (m ${info.index.m || 16}, ef_construction ${info.index.ef_construction || 200}${info.index.quantization && info.index.quantization !== 'none' ? `, ${info.index.quantization}` : ''}; ${info.indexed ?? 0} in the graph${info.index_building ? ', building' : ''})`
              : ''}
          </dd>
          <dt>Size</dt>
          <dd>{bytes(info.size_bytes)}</dd>
        </dl>
      ) : null}
      <form
        class="card"
        aria-label="Search"
        onSubmit={(e) => {
          e.preventDefault();
          search();
        }}
      >
        <h2>Search</h2>
        <Field label="Query vector" name="vector" multiline rows={3} value={vector} onInput={setVector} error={errors.vector} placeholder="[0.1, 0.2, …]" onSubmit={search} />
        <div class="row">
          <div class="field">
            <label for="pick">…or a stored document's vector</label>
            <select id="pick" value={pick} onChange={(e) => setPick(e.currentTarget.value)}>
              <option value="">(choose a document)</option>
              {ids.map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </div>
          <button type="button" onClick={useStored} disabled={!pick}>
            Use its vector
          </button>
        </div>
        <div class="row">
          <Field class="narrow" label="k" name="k" value={k} onInput={setK} error={errors.limit} />
          <Field class="grow" label="Filter" name="vfilter" value={filter} onInput={setFilter} error={errors.filter} placeholder="{ category: 'books' }" />
          <Field class="narrow" label="ef" name="ef" value={ef} onInput={setEf} error={errors.ef} placeholder="128" />
        </div>
        <ErrorBox error={errors.general} />
        <div class="actions">
          <button type="submit" class="primary">
            Search
          </button>
        </div>
      </form>
      {hits ? (
        <>
          <p class="count" aria-live="polite">
            {hits.length} result{hits.length === 1 ? '' : 's'}
            {plan ? ` (${String(plan.path)})` : ''}
          </p>
          <div class="scroll">
            <table class="grid" aria-label="Search results">
              <thead>
                <tr>
                  <th scope="col" class="num">
                    #
                  </th>
                  <th scope="col">Id</th>
                  <th scope="col" class="num">
                    Score
                  </th>
                  <th scope="col">Document</th>
                </tr>
              </thead>
              <tbody>
                {hits.map((h, i) => (
                  <tr key={h.document_id} data-id={h.document_id}>
                    <td class="num">{i + 1}</td>
                    <td>{h.document_id}</td>
                    <td class="num">{h.similarity.toFixed(4)}</td>
                    <td>
                      <JsonView value={h.document} label={`Document ${h.document_id}`} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

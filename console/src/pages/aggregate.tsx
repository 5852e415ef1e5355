// The aggregation pipeline editor: stages one per box, and each stage's output shown under it
// (the pipeline run up to that stage, its first documents).
import { useState } from 'preact/hooks';
import { ApiError, call, enc } from '../api';
import { errorField, parseObject, type JsonObject } from '../mongo';
import { ErrorBox, Field, JsonView } from '../ui';

const PREVIEW = 20;

interface StageOutput {
  docs?: JsonObject[];
  error?: string;
}

export function AggregatePane({ name }: { name: string }) {
  const [stages, setStages] = useState<string[]>(['{ $match: {} }']);
  const [outputs, setOutputs] = useState<StageOutput[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const run = async () => {
    setError(null);
    const parsed: JsonObject[] = [];
    const outs: StageOutput[] = [];
    for (let i = 0; i < stages.length; i++) {
      try {
        parsed.push(parseObject(stages[i]));
      } catch (e) {
        outs[i] = { error: (e as Error).message };
        setOutputs(outs);
        return;
      }
    }
    setBusy(true);
    // Each prefix of the pipeline, so every stage shows what it hands the next one.
    for (let i = 0; i < parsed.length; i++) {
      try {
        const r = await call<{ documents: JsonObject[] }>('POST', `/collections/${enc(name)}/aggregate`, {
          pipeline: [...parsed.slice(0, i + 1), { $limit: PREVIEW }],
        });
        outs[i] = { docs: r.documents };
      } catch (e) {
        const f = e instanceof ApiError ? errorField(e.message) : null;
        if (f?.field === 'pipeline' && f.index !== undefined && f.index !== i) setError(e instanceof Error ? e.message : String(e));
        outs[i] = { error: (e as Error).message };
        break;
      }
    }
    setOutputs([...outs]);
    setBusy(false);
  };

  return (
    <div class="pipeline">
      <p class="hint">
        One stage per box ($match $group $sort $limit $skip $project $unwind $count $addFields $set $unset $lookup). Under each
        stage: its first {PREVIEW} output documents. Ctrl+Enter runs.
      </p>
      <ol>
        {stages.map((s, i) => (
          <li key={i} class="stage" data-stage={i}>
            <Field
              label={`Stage ${i + 1}`}
              name={`stage-${i}`}
              multiline
              rows={3}
              value={s}
              error={outputs[i]?.error}
              onInput={(v) => setStages(stages.map((x, k) => (k === i ? v : x)))}
              onSubmit={run}
            />
            <div class="stage-actions">
              <button type="button" class="small" onClick={() => setStages([...stages.slice(0, i + 1), '{ }', ...stages.slice(i + 1)])}>
                Add stage after
              </button>{' '}
              <button
                type="button"
                class="small"
                disabled={stages.length === 1}
                onClick={() => {
                  setStages(stages.filter((_, k) => k !== i));
                  setOutputs([]);
                }}
              >
                Remove
              </button>
            </div>
            {outputs[i]?.docs ? (
              <details open class="stage-output">
                <summary>
                  Output of stage {i + 1}: {outputs[i].docs!.length}
                  {outputs[i].docs!.length === PREVIEW ? '+' : ''} document{outputs[i].docs!.length === 1 ? '' : 's'}
                </summary>
                <JsonView value={outputs[i].docs} label={`Output of stage ${i + 1}`} />
              </details>
            ) : null}
          </li>
        ))}
      </ol>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="button" onClick={() => setStages([...stages, '{ }'])}>
          Add stage
        </button>
        <button type="button" class="primary" onClick={run} disabled={busy}>
          Run pipeline
        </button>
      </div>
    </div>
  );
}

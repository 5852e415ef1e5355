// Small pieces every page shares: fields with their error beside them, modal dialogs, JSON.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { BASE, navigate } from './router';
import { call } from './api';
import type { Json } from './mongo';

export function Link(props: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' }) {
  const { to, children, ...rest } = props;
  return (
    <a
      href={BASE + to}
      {...rest}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

let nextId = 0;
export function useId(prefix: string): string {
  const [id] = useState(() => `${prefix}-${++nextId}`);
  return id;
}

// A labelled input (or textarea) with the error that concerns it right beside it.
export function Field(props: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | null;
  multiline?: boolean;
  rows?: number;
  placeholder?: string;
  type?: string;
  name?: string;
  autoFocus?: boolean;
  class?: string;
  onSubmit?: () => void; // Ctrl+Enter (Enter in a one-line field submits its form anyway)
}) {
  const id = useId('f');
  const common = {
    id,
    name: props.name,
    value: props.value,
    placeholder: props.placeholder,
    autoFocus: props.autoFocus,
    spellcheck: false,
    'aria-invalid': props.error ? true : undefined,
    'aria-describedby': props.error ? id + '-err' : undefined,
    onInput: (e: JSX.TargetedEvent<HTMLInputElement | HTMLTextAreaElement>) => props.onInput(e.currentTarget.value),
    onKeyDown: (e: KeyboardEvent) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && props.onSubmit) {
        e.preventDefault();
        props.onSubmit();
      }
    },
  };
  return (
    <div class={'field ' + (props.class ?? '')}>
      <label for={id}>{props.label}</label>
      {props.multiline ? <textarea rows={props.rows ?? 4} {...common} /> : <input type={props.type ?? 'text'} {...common} />}
      {props.error ? (
        <div class="error" id={id + '-err'} role="alert" data-field={props.name}>
          {props.error}
        </div>
      ) : null}
    </div>
  );
}

export function ErrorBox({ error }: { error: string | null | undefined }) {
  return error ? (
    <div class="error box" role="alert">
      {error}
    </div>
  ) : null;
}

// A modal dialog (the browser's <dialog>: focus stays inside, Escape closes it).
export function Modal(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const close = () => props.onClose();
    d?.addEventListener('close', close);
    return () => d?.removeEventListener('close', close);
  }, []);
  return (
    <dialog ref={ref} aria-label={props.title}>
      <div class="dialog-head">
        <h2>{props.title}</h2>
        <button type="button" class="plain" aria-label="Close" onClick={() => ref.current?.close()}>
          ✕
        </button>
      </div>
      {props.children}
    </dialog>
  );
}

// Drop something for good: the user types its name to confirm.
export function ConfirmByName(props: {
  what: string;
  name: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Modal title={`Drop ${props.what} ${props.name}`} onClose={props.onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (typed !== props.name) return;
          setBusy(true);
          try {
            await props.onConfirm();
            props.onClose();
          } catch (err) {
            setError((err as Error).message);
          } finally {
            setBusy(false);
          }
        }}
      >
        <p>
          This deletes the {props.what} <strong>{props.name}</strong> and everything in it. Type its name to confirm.
        </p>
        <Field label="Name" name="confirm-name" value={typed} onInput={setTyped} autoFocus />
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="danger" disabled={typed !== props.name || busy}>
            Drop {props.what}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function JsonView({ value, label }: { value: Json | undefined; label?: string }) {
  return (
    <pre class="json" tabIndex={0} aria-label={label ?? 'JSON'}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Tabs(props: { tabs: { to: string; label: string; current: boolean }[] }) {
  return (
    <nav class="tabs" aria-label="Views">
      {props.tabs.map((t) => (
        <Link key={t.to} to={t.to} class={t.current ? 'tab current' : 'tab'} aria-current={t.current ? 'page' : undefined}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

export function ReadOnlyNote({ readOnly }: { readOnly: boolean }) {
  return readOnly ? <p class="note">This key is read-only: writing is not offered.</p> : null;
}

// A collection page's title, its kind, and (for a read-write key) its Drop button, which asks
// for the name and goes back to the list.
export function CollectionTitle(props: { kind: 'documents' | 'vectors'; name: string; readOnly: boolean; path: string }) {
  const [dropping, setDropping] = useState(false);
  return (
    <div class="title-row">
      <h1 id="h-collection">
        <span class={'kind ' + props.kind}>{props.kind}</span> {props.name}
      </h1>
      <span class="spacer" />
      {props.readOnly ? null : (
        <button type="button" class="danger" onClick={() => setDropping(true)}>
          Drop collection
        </button>
      )}
      {dropping ? (
        <ConfirmByName
          what="collection"
          name={props.name}
          onClose={() => setDropping(false)}
          onConfirm={async () => {
            await call('DELETE', props.path);
            navigate('/');
          }}
        />
      ) : null}
    </div>
  );
}

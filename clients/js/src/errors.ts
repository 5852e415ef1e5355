// Every failed call rejects with a NexaDBError carrying the gRPC status code.
import { status as Status, ServiceError } from '@grpc/grpc-js';

export class NexaDBError extends Error {
  /** The numeric gRPC status code (grpc.status.NOT_FOUND is 5, ...). */
  readonly code: number;
  /** Its name: 'NOT_FOUND', 'INVALID_ARGUMENT', 'UNAUTHENTICATED', ... */
  readonly codeName: string;
  /** The server's message. */
  readonly details: string;
  /** The RPC that failed, e.g. 'InsertOne'. */
  readonly method: string;

  constructor(code: number, details: string, method: string) {
    const codeName = Status[code] ?? `CODE_${code}`;
    super(`${codeName}: ${details} (${method})`);
    this.name = 'NexaDBError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.method = method;
  }
}

export function fromServiceError(e: unknown, method: string): NexaDBError {
  const se = e as Partial<ServiceError>;
  if (typeof se?.code === 'number') {
    return new NexaDBError(se.code, se.details || se.message || '', method);
  }
  return new NexaDBError(Status.UNKNOWN, e instanceof Error ? e.message : String(e), method);
}

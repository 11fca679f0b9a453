// Opens a collected fleet database: a PostgreSQL URL or a SQLite path.
import type { FleetStore } from './records.js';
import { PostgresFleet } from './store-postgres.js';
import { SqliteFleet } from './store-sqlite.js';

export type { FleetStore } from './records.js';

export const isPostgresUrl = (target: string): boolean => /^postgres(?:ql)?:\/\//.test(target);

export async function openFleetStore(target: string, options: { readonly?: boolean; onError?: (error: Error) => void; connections?: number } = {}): Promise<FleetStore> {
  if (isPostgresUrl(target)) return PostgresFleet.open(target, options);
  return new SqliteFleet(target, options);
}

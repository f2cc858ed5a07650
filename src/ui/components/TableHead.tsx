// The header row of the app's data tables: column labels, numbers right-aligned, and an actions
// column that only screen readers name.

/** A column: its label, `{ num }` for a right-aligned number column (with an optional tooltip), or ACTIONS. */
export type Column = string | { num: string; title?: string };

/** The last column of a table whose rows end in buttons: no visible label. */
export const ACTIONS: Column = '';

export function TableHead({ columns }: { columns: readonly Column[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) =>
          typeof c !== 'string' ? (
            <th key={c.num} scope="col" className="num" title={c.title}>
              {c.num}
            </th>
          ) : (
            <th key={c || 'actions'} scope="col">
              {c === ACTIONS ? <span className="visually-hidden">Actions</span> : c}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}

// A data table in a frame that scrolls sideways when the table is wider than the screen.
import type { ReactNode } from 'react';

export function ScrollTable({ className, testId, children }: { className?: string; testId?: string; children: ReactNode }) {
  return (
    <div className="table-scroll">
      <table className={className ? `table ${className}` : 'table'} data-testid={testId}>
        {children}
      </table>
    </div>
  );
}

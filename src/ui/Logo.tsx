/** The Whittle mark: a carving knife lifting a curl of wood. Decorative: the name is text beside it. */
export function Logo({ size = 32 }: { size?: number }) {
  return (
    <svg className="logo" width={size} height={size} viewBox="0 0 32 32" aria-hidden="true" focusable="false">
      <rect width="32" height="32" rx="8" className="logo-bg" />
      <path d="M7 25l4.6-4.6" className="logo-handle" />
      <path d="M10.8 18.4L22.4 6.8c1.6-1.6 4.4-1.2 4 .9L13.6 21.2z" className="logo-blade" />
      <path d="M16.2 13C13.8 9.6 9.4 9.4 7.9 12.2c-1.2 2.3.6 4.7 2.8 4.2 1.7-.4 2-2.5.7-3.1" className="logo-curl" />
    </svg>
  );
}

// useLatest: a ref that always holds the value of the latest render.
import { useEffect, useRef, type RefObject } from 'react';

/**
 * A ref to the value of the latest committed render, for effects and callbacks that must read
 * the current value without re-running (or re-subscribing) whenever it changes.
 */
export function useLatest<T>(value: T): RefObject<T> {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}

// Drag-and-drop onto an element: whether something is dragged over it (for the highlight) and the
// handlers that accept the drop instead of letting the browser open the file.
import { useState, type DragEvent } from 'react';

export function useDropZone(onDrop: (e: DragEvent<HTMLElement>) => void) {
  const [dragging, setDragging] = useState(false);
  return {
    dragging,
    dropProps: {
      onDragOver: (e: DragEvent<HTMLElement>) => {
        e.preventDefault();
        setDragging(true);
      },
      onDragLeave: () => setDragging(false),
      onDrop: (e: DragEvent<HTMLElement>) => {
        e.preventDefault();
        setDragging(false);
        onDrop(e);
      },
    },
  };
}

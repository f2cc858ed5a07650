// The create-job form opened from the first screen's "Try it" card: the chosen shipped sample's
// files (fetched from this origin, as if the user had picked them) and the card's settings.
import { useEffect, useState } from 'react';
import { useLatest } from './useLatest';
import { errorText } from './engine';
import type { SampleDataset } from '../jobs/samples';
import { fetchSampleFiles, fetchSampleIndex } from './samples';

export interface SamplePrefill {
  sample: SampleDataset;
  train: File;
  valid: File;
}

/** Calls `apply` once per sample id with its files; returns an error message if it could not. */
export function useSamplePrefill(sampleId: string | null, apply: (p: SamplePrefill) => void): string | null {
  const [error, setError] = useState<string | null>(null);
  const applyRef = useLatest(apply);
  useEffect(() => {
    if (!sampleId) return;
    let live = true;
    const base = document.baseURI;
    fetchSampleIndex(base)
      .then(async (samples) => {
        const sample = samples.find((s) => s.id === sampleId);
        if (!sample) throw new Error(`There is no sample dataset "${sampleId}" in this build.`);
        const files = await fetchSampleFiles(sample, base);
        if (live) applyRef.current({ sample, ...files });
      })
      .catch((e: unknown) => live && setError(errorText(e)));
    return () => {
      live = false;
    };
  }, [sampleId, applyRef]);
  return error;
}

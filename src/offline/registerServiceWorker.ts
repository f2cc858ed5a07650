// Registers public/sw.js, which makes the app work offline after one online visit. Built apps
// only: under the dev server a caching worker would serve stale modules and fight hot reload.

/** Registers the service worker in built apps; a no-op under the dev server and where unsupported. */
export function registerServiceWorker(): void {
  // import.meta.hot exists only under the dev server. Not import.meta.env.PROD: that follows
  // NODE_ENV, which is 'test' when the browser tests build the app.
  if (import.meta.hot) return;
  // Absent outside secure contexts (plain http to a non-local host) and in some private modes.
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return;
  const register = () => {
    navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`).catch((error: unknown) => {
      // Offline support is a bonus: the app works without it, so this is not an error.
      console.warn('Whittle: offline support is unavailable (service worker registration failed):', error);
    });
  };
  // After load, so that caching the model does not compete with the first page load.
  if (document.readyState === 'complete') register();
  else window.addEventListener('load', register, { once: true });
}
